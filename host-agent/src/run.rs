//! `host-agent run`: one Workload manifest, on this machine, with no cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use prometheus_client::registry::Registry;
use weft_runtime::plugins::{
    config::ConfigPlugin, http::HttpPlugin, logging::LoggingPlugin, wasi::WasiPlugin,
};
use weft_runtime::router::Router;
use weft_runtime::{Engine, Host, RuntimeMetrics};

use crate::admin::{self, Admin};
use crate::{convert, manifest};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The Workload manifest (the same YAML you would `kubectl apply`).
    pub manifest: PathBuf,
    /// Where the workload's HTTP is served.
    #[arg(long, default_value = "127.0.0.1:8080", env = "WEFT_LISTEN")]
    pub listen: SocketAddr,
    /// Where /metrics, /healthz, /readyz and /workloads are served.
    #[arg(long, default_value = "127.0.0.1:9090", env = "WEFT_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    /// Compiled components are kept here between runs.
    #[arg(long, env = "WEFT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Exit code for a manifest that cannot be run as written.
pub const BAD_INPUT: i32 = 2;

/// Errors of the user's input, as opposed to failures of the host.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BadInput(#[from] pub anyhow::Error);

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let workload = manifest::load(&args.manifest).map_err(|e| BadInput(e.into()))?;
    let base = args
        .manifest
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let spec = convert::to_spec(&workload, &base).map_err(|e| {
        BadInput(anyhow::Error::new(e).context(args.manifest.display().to_string()))
    })?;

    let metrics = RuntimeMetrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);

    let mut engine = Engine::builder();
    if let Some(dir) = args.cache_dir.clone().or_else(default_cache_dir) {
        engine = engine.cache_dir(dir);
    }
    let router = Arc::new(Router::new(true));
    let http = Arc::new(HttpPlugin::new(router, metrics.clone()));
    let host = Arc::new(
        Host::builder()
            .engine(engine.build()?)
            .metrics(metrics)
            .plugin(Arc::new(WasiPlugin))?
            .plugin(http.clone())?
            .plugin(Arc::new(ConfigPlugin))?
            .plugin(Arc::new(LoggingPlugin))?
            .build()?,
    );
    host.start().await?;

    let admin = Arc::new(Admin {
        registry,
        host: host.clone(),
        ready: AtomicBool::new(false),
    });
    let admin_listener = admin::bind(args.admin_listen).await?;
    let http_listener = weft_runtime::http_server::bind(args.listen).await?;
    let admin_addr = admin_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    tokio::spawn(admin::serve(admin_listener, admin.clone()));

    let status = host.start_workload(spec).await.map_err(|e| {
        BadInput(anyhow::Error::new(e).context(args.manifest.display().to_string()))
    })?;
    admin.set_ready(true);
    tracing::info!(workload = %status.id, http = %http_addr, admin = %admin_addr, "workload running");
    for component in &status.components {
        tracing::info!(workload = %status.id, component = %component.name, digest = %component.digest, exports = ?component.exports, "component ready");
    }
    println!(
        "Serving {} on http://{http_addr}  (admin: http://{admin_addr})",
        status.id
    );
    println!("Try: curl http://{http_addr}/");

    let shutdown = async {
        shutdown_signal().await;
        tracing::info!("shutting down");
    };
    weft_runtime::http_server::serve(http_listener, http, shutdown)
        .await
        .context("HTTP server")?;
    admin.set_ready(false);
    host.shutdown().await;
    Ok(())
}

/// `$XDG_CACHE_HOME/weft/compiled`, or `~/.cache/weft/compiled`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("weft").join("compiled"))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
