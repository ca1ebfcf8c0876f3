//! The seed's cron service: a `wasi:cli/run` service that calls `weft:examples/cron.invoke`,
//! which a sibling component exports, every `$INTERVAL_MS` (default 1000) milliseconds.

use wasip2::exports::cli::run::Guest;

wit_bindgen::generate!({ path: "../../wit", world: "cron-service" });

struct CronService;

impl Guest for CronService {
    fn run() -> Result<(), ()> {
        weft_guest::every("INTERVAL_MS", 1000, weft::examples::cron::invoke)
    }
}

wasip2::cli::command::export!(CronService);
