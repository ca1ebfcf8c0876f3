//! What the cron service invokes: each run adds one to key `runs` of wasi:keyvalue bucket
//! `cron`, so its runs can be watched (with `kv-counter-http`'s `/get?bucket=cron&key=runs`).

wit_bindgen::generate!({ path: "../../wit", world: "cron-job", generate_all });

use wasi::keyvalue::{atomics, store};

struct CronJob;

impl exports::weft::examples::cron::Guest for CronJob {
    fn invoke() {
        // A failure to count is not worth a trap: the next run tries again.
        if let Ok(bucket) = store::open("cron") {
            let _ = atomics::increment(&bucket, "runs", 1);
        }
    }
}

export!(CronJob);
