//! The Weft operator: places Workloads on Hosts and keeps them running.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use operator::admin::{Admin, Health, Role};
use operator::leader::{self, LeaderElector};
use operator::metrics::Metrics;
use operator::{controllers, crdgen, uninstall};
use tokio::sync::watch;
use weft_daemon::signals::Shutdown;
use weft_daemon::telemetry::LogArgs;

/// The Weft operator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print Weft's CustomResourceDefinitions as YAML (or write them to files with --out-dir).
    Crd(crdgen::CrdArgs),
    /// Run the operator: elect a leader, then schedule Workloads onto Hosts.
    Run(RunArgs),
    /// Stop the operator and release Weft's finalizer from every Workload (the chart's
    /// pre-delete hook runs this, so `helm uninstall` leaves nothing stuck).
    Uninstall(uninstall::UninstallArgs),
}

/// Arguments of `operator run`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Namespace of the leader Lease and of the host-agents (their Leases and Pods).
    #[arg(long, env = "POD_NAMESPACE", default_value = "weft-system")]
    namespace: String,

    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_listen: SocketAddr,

    /// Duration of the leader Lease (`10s`, `1m`); it is renewed every third of that.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    lease_duration: Duration,

    /// HTTP host names a namespace may claim beyond its own (`web.<namespace>`), as
    /// `NAMESPACE=SUFFIX[,SUFFIX…]`: the suffix and every name under it. Repeatable.
    #[arg(long = "hostname-grant", value_name = "NAMESPACE=SUFFIXES")]
    hostname_grants: Vec<String>,
}

/// How long shutdown waits for in-flight reconciliations before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd(args) => crdgen::run(&args),
        Command::Run(args) => block_on(cli.log, run(args)),
        Command::Uninstall(args) => block_on(cli.log, async move {
            let client = weft_daemon::client::connect().await?;
            uninstall::run(client, &args).await
        }),
    }
}

fn block_on(log: LogArgs, task: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    // Both aws-lc-rs and ring are in the dependency tree: pick one before any TLS client
    // is built. An error means a provider is already installed, which is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _telemetry = log.init("weft-operator", "info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(task);
    // Do not let a straggling task (an abandoned watch, a blocking call) delay the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.lease_duration < Duration::from_secs(1) {
        anyhow::bail!("--lease-duration must be at least 1s");
    }
    let hostname_grants = weft_api::hostnames::HostnameGrants::parse(&args.hostname_grants)
        .context("--hostname-grant")?;
    let client = weft_daemon::client::connect().await?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    let listener = weft_daemon::admin::bind(args.metrics_listen).await?;
    tracing::info!(address = %args.metrics_listen, "serving /metrics, /healthz and /readyz");
    let admin = tokio::spawn(weft_daemon::admin::serve(
        listener,
        Arc::new(Admin {
            metrics: metrics.clone(),
            health: health.clone(),
        }),
    ));

    let identity = leader::identity();
    // The leader Lease gets a connection of its own: behind thousands of the controllers'
    // requests (a failed Host's Workloads moving) its renewal missed its deadline and the
    // operator stepped down mid-failover.
    let elector = LeaderElector::new(
        weft_daemon::client::connect().await?,
        &args.namespace,
        identity.clone(),
        args.lease_duration,
    );
    let shutdown = Shutdown::install()
        .context("installing the signal handlers")?
        .requested();
    tokio::pin!(shutdown);

    tokio::select! {
        () = elector.acquire(&health) => {}
        () = &mut shutdown => {
            admin.abort();
            return Ok(());
        }
    }
    health.set(Role::Leader);

    let (stop_tx, stop_rx) = watch::channel(false);
    let controllers = tokio::spawn(controllers::run(
        client,
        args.namespace.clone(),
        identity,
        metrics,
        hostname_grants,
        stop_rx,
    ));
    tokio::pin!(controllers);

    let outcome = tokio::select! {
        () = &mut shutdown => Ok(()),
        lost = elector.keep() => Err(anyhow::Error::new(lost).context("stopping: this replica is no longer the leader")),
        ended = &mut controllers => match ended {
            Ok(()) => Err(anyhow::anyhow!("the controllers stopped unexpectedly")),
            Err(join) => Err(anyhow::Error::new(join).context("the controllers panicked")),
        },
    };

    // Stop reconciling before letting go of the Lease, so two leaders never overlap.
    let _ = stop_tx.send(true);
    if !controllers.is_finished()
        && tokio::time::timeout(SHUTDOWN_GRACE, &mut controllers)
            .await
            .is_err()
    {
        tracing::warn!("controllers did not stop within {SHUTDOWN_GRACE:?}; aborting them");
        controllers.abort();
    }
    if outcome.is_ok() {
        match tokio::time::timeout(SHUTDOWN_GRACE, elector.release()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(
                error = %operator::error::chain(&error),
                "could not release the leader Lease; a standby takes over when it expires"
            ),
            Err(_) => tracing::warn!(
                "releasing the leader Lease timed out; a standby takes over when it expires"
            ),
        }
    }
    admin.abort();
    outcome
}
