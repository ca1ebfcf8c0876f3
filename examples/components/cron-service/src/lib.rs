//! The seed's cron service: a `wasi:cli/run` service that calls `weft:examples/cron.invoke`,
//! which a sibling component exports, every `$INTERVAL_MS` (default 1000) milliseconds.

use wasip2::cli::environment;
use wasip2::exports::cli::run::Guest;

wit_bindgen::generate!({ path: "../../wit", world: "cron-service" });

struct CronService;

impl Guest for CronService {
    fn run() -> Result<(), ()> {
        let interval_ms: u64 = environment::get_environment()
            .into_iter()
            .find(|(key, _)| key == "INTERVAL_MS")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(1000);
        loop {
            weft::examples::cron::invoke();
            wasip2::clocks::monotonic_clock::subscribe_duration(interval_ms * 1_000_000).block();
        }
    }
}

wasip2::cli::command::export!(CronService);
