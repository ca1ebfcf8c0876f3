//! Logging to stderr: human-readable by default (coloured only on a terminal), JSON with
//! `--log-format json`; `RUST_LOG` filters.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The daemons' logging flag, for every subcommand.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct LogArgs {
    #[arg(
        long,
        value_enum,
        default_value = "text",
        global = true,
        env = "WEFT_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// Installs the global subscriber; `default_filter` applies when `RUST_LOG` is unset.
    pub fn init(self, default_filter: &str) {
        init(self.log_format, default_filter);
    }
}

/// Installs the global subscriber; `default_filter` applies when `RUST_LOG` is unset.
fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
