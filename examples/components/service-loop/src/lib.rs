//! A long-running service (`wasi:cli/run`) that prints `tick N` every 100 ms.
//! `EXIT_AFTER_TICKS=N` makes it exit with an error after N ticks and
//! `TRAP_AFTER_TICKS=N` makes it trap, so tests can exercise restarts.

use wasip2::cli::{environment, stderr, stdout};
use wasip2::clocks::monotonic_clock;
use wasip2::exports::cli::run::Guest;

const TICK_NANOS: u64 = 100_000_000;

struct Service;

impl Guest for Service {
    fn run() -> Result<(), ()> {
        let exit_after = env_number("EXIT_AFTER_TICKS");
        let trap_after = env_number("TRAP_AFTER_TICKS");
        let stdout = stdout::get_stdout();
        let mut tick = 0;
        loop {
            tick += 1;
            stdout
                .blocking_write_and_flush(format!("tick {tick}\n").as_bytes())
                .unwrap();
            if exit_after == Some(tick) {
                let line = format!("exiting with an error after {tick} ticks\n");
                stderr::get_stderr()
                    .blocking_write_and_flush(line.as_bytes())
                    .unwrap();
                return Err(());
            }
            if trap_after == Some(tick) {
                panic!("trapping after {tick} ticks");
            }
            monotonic_clock::subscribe_duration(TICK_NANOS).block();
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    environment::get_environment()
        .into_iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value.parse().ok())
}

wasip2::cli::command::export!(Service);
