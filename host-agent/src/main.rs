//! `host-agent`: runs Weft Workloads on Wasmtime.

mod admin;
mod agent;
mod backend_args;
mod convert;
mod dev;
mod dev_view;
mod image;
mod inspect;
mod isolation_args;
mod launcher;
mod lifecycle;
mod node;
mod observed;
mod push;
mod registry_args;
mod run;
mod sources;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Runs WebAssembly component Workloads on Wasmtime")]
struct Cli {
    #[command(flatten)]
    log: weft_daemon::telemetry::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Workload manifests locally, without a cluster.
    Run(run::RunArgs),
    /// Like `run`, and apply every change to the manifests, their component files and
    /// `--watch` sources as a live update (after `--build`).
    Dev(crate::dev::DevArgs),
    /// Run in a cluster: register a Host and run the Workloads the operator assigns to it.
    Agent(agent::AgentArgs),
    /// Publish a component to an OCI registry (Wasm OCI artifact layout); prints its digest.
    Push(push::PushArgs),
    /// Show a component's WIT imports and exports, size and digest (a file or a reference).
    Inspect(inspect::InspectArgs),
}

fn main() {
    let cli = Cli::parse();
    // `dev` shows what it serves, requests and guest output in a view of its own on stdout;
    // the host's log on stderr keeps to warnings unless RUST_LOG asks for more.
    let (view, default_filter) = match &cli.command {
        Command::Dev(args) => (Some(dev_view::Out::dev(args.json).view()), "warn"),
        _ => (None, "info,wasmtime=warn,cranelift=warn"),
    };
    let telemetry = cli
        .log
        .init_with_view("weft-host-agent", default_filter, view);
    // Two rustls crypto providers are in the dependency tree; pick the one reqwest uses.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Dev(args) => run::dev(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Push(args) => push::push(args).await,
            Command::Inspect(args) => inspect::inspect(args).await,
        }
    });
    // A compile still running on a blocking thread (a big component) is not waited for: a
    // shutdown asked for is a shutdown done.
    runtime.shutdown_background();
    // Spans still batched go out before the process ends (exit skips destructors).
    drop(telemetry);
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
