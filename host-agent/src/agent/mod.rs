//! `host-agent agent`: cluster mode. Registers this host-agent's `Host`, renews its Lease,
//! runs the Workloads the operator assigns to it and reports their status, all through the
//! API server (see docs/control-plane.md).

mod events;
mod host_object;
mod images_needed;
mod lease;
mod pull_secrets;
mod reconciler;
mod status;
mod workload_state;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use weft_daemon::signals::Shutdown;

use crate::admin::Admin;
use crate::node::{ImageArgs, Mode, Node};

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// This host's name: its Host object, its Lease, the value of `weft.dev/host` on the
    /// Workloads it runs [default: the Pod name, else the machine's hostname].
    #[arg(long, env = "POD_NAME")]
    pub host_name: Option<String>,
    /// Namespace of the host-agent's Lease (and Pod).
    #[arg(long, env = "POD_NAMESPACE", default_value = "weft-system")]
    pub namespace: String,
    /// The address others reach this host on (the EndpointSlice lists it) [default: the
    /// listen address, or 127.0.0.1 when that is unspecified].
    #[arg(long, env = "POD_IP")]
    pub address: Option<IpAddr>,
    /// Where the workloads' HTTP is served.
    #[arg(long, default_value = "0.0.0.0:8080", env = "WEFT_LISTEN")]
    pub listen: SocketAddr,
    /// Where /metrics, /healthz, /readyz and /workloads are served.
    #[arg(long, default_value = "0.0.0.0:9090", env = "WEFT_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    /// How long the Lease holds without renewal; the operator moves this host's Workloads
    /// when it lapses. Renewed every third of it.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,
    /// The most Workloads this host accepts.
    #[arg(long, default_value_t = 1000)]
    pub max_workloads: u32,
    /// How often the ConfigMaps and Secrets a running Workload takes values from are read
    /// again: the longest a rotated Secret waits to reach it. Each read is one GET per object,
    /// so this is API server load per such Workload (the agent may read the objects a Workload
    /// names and no others, so it cannot watch them).
    #[arg(long, default_value = "30s", value_parser = parse_resync)]
    pub sources_resync: Duration,
    /// On SIGTERM, how long to wait for the operator to move this host's Workloads away.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    #[command(flatten)]
    pub images: ImageArgs,
    #[command(flatten)]
    pub isolation: crate::isolation_args::IsolationArgs,
    #[command(flatten)]
    pub backends: crate::backend_args::BackendArgs,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let host_name = match &args.host_name {
        Some(name) => name.clone(),
        None => hostname()?,
    };
    let shutdown = Shutdown::install().context("installing the signal handlers")?;
    let client = weft_daemon::client::connect().await?;

    // Before touching anything on this machine: no other live agent may use this name.
    let lease = lease::Heartbeat::new(
        client.clone(),
        &args.namespace,
        &host_name,
        args.lease_duration,
    );
    lease.claim().await?;

    let mut node = Node::start(
        &args.images,
        &args.isolation,
        &args.backends,
        Mode::Cluster { host: &host_name },
    )
    .await?;
    let admin = Arc::new(Admin {
        registry: std::mem::take(&mut node.registry),
        launcher: node.launcher.clone(),
        ready: AtomicBool::new(false),
    });
    let admin_listener = weft_daemon::admin::bind(args.admin_listen).await?;
    let http_listener = weft_runtime::http_server::bind(args.listen).await?;
    let http_addr = http_listener.local_addr()?;
    let admin_server = tokio::spawn(weft_daemon::admin::serve(admin_listener, admin.clone()));
    let address = args.address.unwrap_or(match http_addr.ip() {
        ip if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    });

    let registration = Arc::new(host_object::Registration {
        api: kube::Api::all(client.clone()),
        name: host_name.clone(),
        address: address.to_string(),
        http_port: http_addr.port(),
        pod: std::env::var("POD_NAME")
            .ok()
            .map(|pod| format!("{}/{pod}", args.namespace)),
        capacity: args.max_workloads,
        memory: node.host.budget().total().memory,
        instances: node.host.budget().total().instances,
        interfaces: node.host.served_interfaces(),
        applied_ready: Default::default(),
    });
    registration.register().await?;
    let (fenced, fence) = tokio::sync::watch::channel(false);
    let heartbeat = tokio::spawn(lease.clone().run(fenced));
    let registered = tokio::spawn(
        registration
            .clone()
            .keep_registered(args.lease_duration / 3),
    );
    let stop_registering = registered.abort_handle();

    // Subscribed before anything launches, so no report is missed.
    let reports = node.launcher.reports().subscribe();
    let services = node.launcher.host_events();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reconciler = reconciler::start(
        client.clone(),
        host_name.clone(),
        node.launcher.clone(),
        registration.clone(),
        fence,
        stop_rx,
        args.sources_resync,
    );
    let publisher = events::spawn(
        client.clone(),
        &host_name,
        reconciler.store(),
        reports,
        services,
    );
    let collector = node
        .garbage_collector()
        .start(images_needed::lister(client.clone(), host_name.clone()));
    admin.set_ready(true);
    tracing::info!(host = %host_name, http = %http_addr, %address, "host-agent registered");
    println!("Host {host_name} serving on http://{http_addr}");

    let http = node.http.clone();
    let draining = async {
        shutdown.requested().await;
        // Going away: a Host deleted from now on stays deleted.
        stop_registering.abort();
        tracing::info!(host = %host_name, "shutting down: asking the operator to move workloads");
        if let Err(err) = registration.shutting_down().await {
            tracing::warn!(%err, "could not mark the Host unschedulable");
        }
        let deadline = Instant::now() + args.drain_timeout;
        while reconciler.assigned() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    weft_runtime::http_server::serve(
        http_listener,
        http,
        args.isolation.server_limits(),
        draining,
    )
    .await
    .context("HTTP server")?;
    admin.set_ready(false);
    let _ = stop_tx.send(true);
    reconciler.finished().await;
    node.host.shutdown().await;
    // Every task this agent started ends here.
    publisher.abort();
    collector.abort();
    admin_server.abort();
    heartbeat.abort();
    registered.abort();
    lease.release().await;
    tracing::info!(host = %host_name, "stopped");
    Ok(())
}

fn hostname() -> anyhow::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the hostname; set --host-name")?;
    Ok(name.trim().to_ascii_lowercase())
}

/// A resync period: at least a second, so a typo cannot turn it into a tight loop of reads.
fn parse_resync(text: &str) -> Result<Duration, String> {
    let period = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if period < Duration::from_secs(1) {
        return Err(format!("{text} is under the 1s minimum"));
    }
    Ok(period)
}
