//! `host-agent`: runs Weft Workloads on Wasmtime.

mod admin;
mod convert;
mod manifest;
mod run;
mod telemetry;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Runs WebAssembly component Workloads on Wasmtime")]
struct Cli {
    #[arg(
        long,
        value_enum,
        default_value = "text",
        global = true,
        env = "WEFT_LOG_FORMAT"
    )]
    log_format: telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one Workload manifest locally, without a cluster.
    Run(run::RunArgs),
}

fn main() {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
        }
    });
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        let code = if err.downcast_ref::<run::BadInput>().is_some() {
            run::BAD_INPUT
        } else {
            1
        };
        std::process::exit(code);
    }
}
