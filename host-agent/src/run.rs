//! `host-agent run`: Workload manifests, on this machine, with no cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;
use weft_api::Workload;
use weft_runtime::plugins::{
    config::ConfigPlugin, http::HttpPlugin, logging::LoggingPlugin, wasi::WasiPlugin,
};
use weft_runtime::router::Router;
use weft_runtime::{Engine, Host, RuntimeMetrics};

use crate::admin::{self, Admin};
use crate::image::{self, ImageMetrics, ImageStore, Puller};
use crate::launcher::{Backoff, LaunchError, Launcher, id_of};
use crate::registry_args::{RegistryArgs, user_cache};
use crate::{convert, manifest};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Workload manifests (the same YAML you would `kubectl apply`).
    #[arg(required = true)]
    pub manifests: Vec<PathBuf>,
    /// Where the workloads' HTTP is served.
    #[arg(long, default_value = "127.0.0.1:8080", env = "WEFT_LISTEN")]
    pub listen: SocketAddr,
    /// Where /metrics, /healthz, /readyz and /workloads are served.
    #[arg(long, default_value = "127.0.0.1:9090", env = "WEFT_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    #[command(flatten)]
    pub images: ImageArgs,
}

/// Where images and compiled components are kept, and how registries are reached.
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Compiled components are kept here between runs [default: $XDG_CACHE_HOME/weft/compiled].
    #[arg(long, env = "WEFT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// First wait before retrying a failed pull; it doubles up to five minutes.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub image_pull_backoff: Duration,
    /// Images and compiled components unused for this long are removed.
    #[arg(long, default_value = "7days", value_parser = humantime::parse_duration)]
    pub image_gc_age: Duration,
}

/// Exit code for a manifest that cannot be run as written.
pub const BAD_INPUT: i32 = 2;

/// Errors of the user's input, as opposed to failures of the host.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BadInput(#[from] pub anyhow::Error);

const MAX_PULL_BACKOFF: Duration = Duration::from_secs(300);
const GC_INTERVAL: Duration = Duration::from_secs(3600);

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let workloads = load_all(&args.manifests)?;
    let credentials = args.images.registry.credentials()?;
    if workloads
        .iter()
        .flat_map(|(_, w)| w.spec.all_components())
        .any(|c| !c.image_pull_secrets.is_empty())
    {
        tracing::info!(
            "imagePullSecrets name Secrets in a cluster; locally, credentials come from the registry config"
        );
    }

    let mut registry = Registry::default();
    let metrics = RuntimeMetrics::default();
    metrics.register(&mut registry);
    let image_metrics = ImageMetrics::default();
    image_metrics.register(&mut registry);

    let cache_dir = args
        .images
        .cache_dir
        .clone()
        .or_else(|| user_cache("compiled"));
    let mut engine = Engine::builder();
    if let Some(dir) = &cache_dir {
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

    let image_dir = args.images.registry.image_dir()?;
    let store = Arc::new(
        ImageStore::open(&image_dir)
            .with_context(|| format!("opening the image store {}", image_dir.display()))?,
    );
    let puller = Arc::new(Puller::new(
        store.clone(),
        args.images.registry.insecure_registries.clone(),
        image_metrics,
    ));
    let launcher = Arc::new(Launcher::new(
        host.clone(),
        puller,
        Backoff {
            initial: args.images.image_pull_backoff,
            max: MAX_PULL_BACKOFF,
        },
    ));
    tokio::spawn(collect_garbage(
        store,
        cache_dir,
        args.images.image_gc_age,
        launcher.clone(),
    ));

    let admin = Arc::new(Admin {
        registry,
        launcher: launcher.clone(),
        ready: AtomicBool::new(false),
    });
    let admin_listener = admin::bind(args.admin_listen).await?;
    let http_listener = weft_runtime::http_server::bind(args.listen).await?;
    let admin_addr = admin_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    tokio::spawn(admin::serve(admin_listener, admin.clone()));
    println!("Listening on http://{http_addr}  (admin: http://{admin_addr})");

    // Launch every workload at once; a failure that waiting cannot fix ends the run.
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<anyhow::Error>(1);
    let single = workloads.len() == 1;
    let mut launches = tokio::task::JoinSet::new();
    for (path, workload) in workloads {
        let launcher = launcher.clone();
        let credentials = credentials.clone();
        let fatal_tx = fatal_tx.clone();
        launches.spawn(async move {
            let base = path.parent().map(PathBuf::from).unwrap_or_default();
            match launcher.launch(&workload, Some(base), &credentials).await {
                Ok(status) => announce(&workload, &status, http_addr, single),
                Err(err) => {
                    let _ = fatal_tx.send(launch_error(err, &path)).await;
                }
            }
        });
    }
    drop(fatal_tx);
    let all_started = {
        let admin = admin.clone();
        async move {
            while launches.join_next().await.is_some() {}
            admin.set_ready(true);
            std::future::pending::<()>().await
        }
    };

    let mut fatal = None;
    let shutdown = async {
        tokio::select! {
            _ = shutdown_signal() => tracing::info!("shutting down"),
            Some(err) = fatal_rx.recv() => fatal = Some(err),
            _ = all_started => {}
        }
    };
    weft_runtime::http_server::serve(http_listener, http, shutdown)
        .await
        .context("HTTP server")?;
    admin.set_ready(false);
    host.shutdown().await;
    match fatal {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Loads and checks every manifest before anything starts.
fn load_all(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Workload)>> {
    let mut workloads: Vec<(PathBuf, Workload)> = Vec::new();
    for path in paths {
        let workload = manifest::load(path).map_err(|e| BadInput(e.into()))?;
        convert::check(&workload).map_err(|e| bad_input(e, path))?;
        if let Some((other, _)) = workloads.iter().find(|(_, w)| id_of(w) == id_of(&workload)) {
            return Err(BadInput(anyhow::anyhow!(
                "{} and {} both define the Workload {}",
                other.display(),
                path.display(),
                id_of(&workload)
            ))
            .into());
        }
        workloads.push((path.clone(), workload));
    }
    Ok(workloads)
}

fn announce(
    workload: &Workload,
    status: &weft_runtime::WorkloadStatus,
    http_addr: SocketAddr,
    single: bool,
) {
    tracing::info!(workload = %status.id, "workload running");
    for component in &status.components {
        tracing::info!(workload = %status.id, component = %component.name, digest = %component.digest, image_id = component.image_id.as_deref().unwrap_or(""), exports = ?component.exports, "component ready");
    }
    println!("Serving {} on http://{http_addr}", status.id);
    let host = workload
        .spec
        .host_interfaces
        .iter()
        .find(|i| i.namespace == "wasi" && i.package == "http")
        .and_then(|i| i.config.get("host"))
        .and_then(|h| h.split(',').next());
    match host {
        Some(host) if !single => println!("Try: curl -H 'Host: {host}' http://{http_addr}/"),
        _ => println!("Try: curl http://{http_addr}/"),
    }
}

/// Errors of the input (a bad reference, a missing file, a component that cannot run) exit
/// with [`BAD_INPUT`]; anything else is the host's own failure.
fn launch_error(err: LaunchError, manifest: &Path) -> anyhow::Error {
    match err {
        LaunchError::Runtime(weft_runtime::Error::Engine(_)) => {
            anyhow::Error::new(err).context(manifest.display().to_string())
        }
        err => bad_input(err, manifest),
    }
}

fn bad_input(
    err: impl std::error::Error + Send + Sync + 'static,
    manifest: &Path,
) -> anyhow::Error {
    BadInput(anyhow::Error::new(err).context(manifest.display().to_string())).into()
}

/// Sweeps the image store and compile cache now and every hour, keeping what runs.
async fn collect_garbage(
    store: Arc<ImageStore>,
    compiled: Option<PathBuf>,
    max_age: Duration,
    launcher: Arc<Launcher>,
) {
    let mut every = tokio::time::interval(GC_INTERVAL);
    loop {
        every.tick().await;
        let in_use = launcher.digests_in_use().await;
        match image::gc::collect(&store, compiled.as_deref(), max_age, &in_use) {
            Ok(c) if c.blobs + c.compiled > 0 => {
                tracing::info!(
                    blobs = c.blobs,
                    compiled = c.compiled,
                    "removed unused images"
                )
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(%err, store = %store.root().display(), "image garbage collection failed")
            }
        }
    }
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
