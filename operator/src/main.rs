//! The Weft operator: places Workloads on Hosts and keeps them running.

use clap::{Parser, Subcommand};
use operator::crdgen;

/// The Weft operator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print Weft's CustomResourceDefinitions as YAML (or write them to files with --out-dir).
    Crd(crdgen::CrdArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd(args) => crdgen::run(&args),
    }
}
