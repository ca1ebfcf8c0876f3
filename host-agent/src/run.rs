//! `host-agent run`: Workload manifests, on this machine, with no cluster.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use serde_json::json;
use weft_api::{Workload, manifest};

use weft_daemon::signals::Shutdown;

use crate::admin::Admin;
use crate::convert;
use crate::dev_view::Out;
use crate::launcher::{LaunchError, id_of};
use crate::node::{ImageArgs, Mode, Node};
use crate::sources::{self, files::FilesReader};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Workload manifests (the same YAML you would `kubectl apply -f`; a file may hold several,
    /// separated by `---`).
    #[arg(required = true)]
    pub manifests: Vec<PathBuf>,
    /// Where the workloads' HTTP is served.
    #[arg(long, default_value = "127.0.0.1:8080", env = "WEFT_LISTEN")]
    pub listen: SocketAddr,
    /// Where /metrics, /healthz, /readyz and /workloads are served.
    #[arg(long, default_value = "127.0.0.1:9090", env = "WEFT_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    /// Where the ConfigMaps and Secrets the manifests name are, as files:
    /// `DIR/configmaps/<name>/<key>` and `DIR/secrets/<name>/<key>`, one file per key.
    #[arg(long, env = "WEFT_SOURCES_DIR")]
    pub sources_dir: Option<PathBuf>,
    #[command(flatten)]
    pub images: ImageArgs,
    #[command(flatten)]
    pub isolation: crate::isolation_args::IsolationArgs,
    #[command(flatten)]
    pub backends: crate::backend_args::BackendArgs,
}

/// Exit code for a manifest that cannot be run as written.
pub const BAD_INPUT: i32 = 2;

/// Errors of the user's input, as opposed to failures of the host.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BadInput(#[from] pub anyhow::Error);

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    serve(args, None, Out::plain()).await
}

/// `host-agent dev`: `run`, reloading on every change (see [`crate::dev`]).
pub async fn dev(args: crate::dev::DevArgs) -> anyhow::Result<()> {
    let sources: Vec<PathBuf> = args
        .watch
        .iter()
        .map(std::path::absolute)
        .collect::<Result<_, _>>()?;
    let build = args.build.or_else(|| crate::dev::default_build(&sources));
    let watch = Watch { build, sources };
    serve(args.run, Some(watch), Out::dev(args.json)).await
}

/// What `dev` watches besides the manifests.
struct Watch {
    build: Option<String>,
    sources: Vec<PathBuf>,
}

/// Runs the manifests until a signal (or, without `watch`, a launch that cannot succeed).
async fn serve(args: RunArgs, watch: Option<Watch>, out: Out) -> anyhow::Result<()> {
    let reader = FilesReader(args.sources_dir.clone());
    let mut workloads = Vec::new();
    for (path, workload) in load_all(&args.manifests)? {
        let resolved = sources::resolve(Arc::new(workload), &reader)
            .await
            .map_err(|e| bad_input(e, &path))?;
        workloads.push((path, Arc::unwrap_or_clone(resolved.workload)));
    }
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

    // One Workload, or the replicas of one WorkloadDeployment, answer any Host header.
    let single = workloads
        .iter()
        .all(|(_, w)| w.claimant() == workloads[0].1.claimant());
    let node = Node::start(
        &args.images,
        &args.isolation,
        &args.backends,
        Mode::Local { single },
    )
    .await?;
    let (host, http, launcher) = (node.host.clone(), node.http.clone(), node.launcher.clone());
    // The manifests are everything this run will start: their images are kept.
    let images: Vec<String> = workloads
        .iter()
        .flat_map(|(_, w)| w.spec.all_components().map(|c| c.image.clone()))
        .collect();
    // Runs until the process exits, as `run` does.
    let _collector = node.garbage_collector().start(move || {
        let images = images.clone();
        async move { Some(images) }
    });

    let admin = Arc::new(Admin {
        registry: node.registry,
        launcher: launcher.clone(),
        ready: AtomicBool::new(false),
    });
    let shutdown_requested = Shutdown::install()
        .context("installing the signal handlers")?
        .requested();
    let admin_listener = weft_daemon::admin::bind(args.admin_listen).await?;
    let http_listener = weft_runtime::http_server::bind(args.listen).await?;
    let admin_addr = admin_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    tokio::spawn(weft_daemon::admin::serve(admin_listener, admin.clone()));
    out.say(
        "listening",
        &format!("Listening on http://{http_addr}  (admin: http://{admin_addr})"),
        json!({"http": http_addr, "admin": admin_addr}),
    );

    // Launch every workload at once; a failure that waiting cannot fix ends the run, and in
    // `dev` waits for the change that fixes it.
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<anyhow::Error>(1);
    let mut launches = tokio::task::JoinSet::new();
    let developing = watch.is_some();
    for (path, workload) in workloads {
        let launcher = launcher.clone();
        let credentials = credentials.clone();
        let fatal_tx = fatal_tx.clone();
        launches.spawn(async move {
            let base = path.parent().map(PathBuf::from).unwrap_or_default();
            match launcher.launch(&workload, Some(base), &credentials).await {
                Ok(status) => announce(&workload, &status, http_addr, single, out),
                Err(err) if developing => {
                    let (id, reason) = (id_of(&workload), weft_api::error_chain(&err));
                    out.error(
                        &format!("{id}: {reason}; fix it and save: it starts again"),
                        json!({"workload": id, "reason": reason}),
                    );
                }
                Err(err) => {
                    let _ = fatal_tx.send(launch_error(err, &path)).await;
                }
            }
        });
    }
    drop(fatal_tx);
    let watching = {
        let dev = watch.map(|watch| crate::dev::Dev {
            build: watch.build,
            sources: watch.sources,
            manifests: args.manifests.clone(),
            launcher: launcher.clone(),
            credentials: credentials.clone(),
            reader: FilesReader(args.sources_dir.clone()),
            out,
        });
        async move {
            match dev {
                Some(dev) => dev.watch().await,
                None => std::future::pending().await,
            }
        }
    };
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
            () = shutdown_requested => {}
            Some(err) = fatal_rx.recv() => fatal = Some(err),
            err = watching => fatal = Some(err),
            _ = all_started => {}
        }
    };
    weft_runtime::http_server::serve(
        http_listener,
        http,
        args.isolation.server_limits(),
        shutdown,
    )
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
pub(crate) fn load_all(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Workload)>> {
    let mut workloads: Vec<(PathBuf, Workload)> = Vec::new();
    let mut defined: HashMap<String, &PathBuf> = HashMap::new();
    for path in paths {
        for workload in manifest::load(path).map_err(|e| BadInput(e.into()))? {
            convert::check(&workload).map_err(|e| bad_input(e, path))?;
            let id = id_of(&workload);
            if let Some(other) = defined.insert(id.clone(), path) {
                return Err(BadInput(anyhow::anyhow!(
                    "{} and {} both define the Workload {id}",
                    other.display(),
                    path.display(),
                ))
                .into());
            }
            workloads.push((path.clone(), workload));
        }
    }
    Ok(workloads)
}

fn announce(
    workload: &Workload,
    status: &crate::observed::Observed,
    http_addr: SocketAddr,
    single: bool,
    out: Out,
) {
    tracing::info!(workload = %status.id, "workload running");
    for component in &status.components {
        tracing::info!(workload = %status.id, component = %component.name, digest = component.digest.as_deref().unwrap_or(""), image_id = component.image_id.as_deref().unwrap_or(""), exports = ?component.exports, "component ready");
    }
    out.say(
        "serving",
        &format!("Serving {} on http://{http_addr}", status.id),
        json!({"workload": status.id, "http": http_addr}),
    );
    let host = workload
        .spec
        .host_interfaces
        .iter()
        .find(|i| i.namespace == "wasi" && i.package == "http")
        .and_then(|i| i.config.get("host"))
        .and_then(|h| h.split(',').next());
    let hint = match host {
        Some(host) if !single => format!("Try: curl -H 'Host: {host}' http://{http_addr}/"),
        _ => format!("Try: curl http://{http_addr}/"),
    };
    out.say("hint", &hint, json!({}));
}

/// Errors of the input (a bad reference, a missing file, a component that cannot run) exit
/// with [`BAD_INPUT`]; anything else is the host's own failure.
fn launch_error(err: LaunchError, manifest: &Path) -> anyhow::Error {
    match err {
        LaunchError::Runtime(weft_runtime::Error::Engine { .. }) => {
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
