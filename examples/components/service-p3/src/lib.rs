//! A WASI 0.3 long-running service (async `wasi:cli/run`): writes `tick N` to stdout every
//! `$INTERVAL_MS` milliseconds (100), awaiting a timer in between. `EXIT_AFTER_TICKS=N` makes it
//! exit with an error after N ticks and `TRAP_AFTER_TICKS=N` makes it trap, so tests can watch
//! the host restart it.

use wasip3::cli::{environment, stdout};
use wasip3::clocks::monotonic_clock;
use wasip3::exports::cli::run::Guest;
use wasip3::wit_stream;

struct Service;

impl Guest for Service {
    async fn run() -> Result<(), ()> {
        let interval = env_number("INTERVAL_MS").unwrap_or(100);
        let exit_after = env_number("EXIT_AFTER_TICKS");
        let trap_after = env_number("TRAP_AFTER_TICKS");
        let (mut tx, rx) = wit_stream::new();
        // stdout takes a stream: the host reads it while this task writes.
        wasip3::spawn_local(async move {
            let _ = stdout::write_via_stream(rx).await;
        });
        let mut tick = 0;
        loop {
            tick += 1;
            tx.write_all(format!("tick {tick}\n").into_bytes()).await;
            if exit_after == Some(tick) {
                return Err(());
            }
            if trap_after == Some(tick) {
                panic!("trapping after {tick} ticks");
            }
            monotonic_clock::wait_for(interval * 1_000_000).await;
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    environment::get_environment()
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))?
        .parse()
        .ok()
}

wasip3::cli::command::export!(Service);
