//! The cron service in the seed's other form: no `wasi:cli/run`, one custom export
//! (`weft:examples/scheduler`) whose one function, `start`, is the entry point. It calls
//! `weft:examples/cron.invoke`, which a sibling exports, every `$INTERVAL_MS` (default 1000).

wit_bindgen::generate!({ path: "../../wit", world: "cron-scheduler" });

struct CronScheduler;

impl exports::weft::examples::scheduler::Guest for CronScheduler {
    fn start() {
        weft_guest::every("INTERVAL_MS", 1000, weft::examples::cron::invoke)
    }
}

export!(CronScheduler);
