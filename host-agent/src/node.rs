//! Everything a host-agent runs on, in either mode: the Wasmtime host with its plugins, the
//! image store and puller, the launcher, the metrics registry and the admin endpoints' state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;
use weft_runtime::plugins::DefaultPlugins;
use weft_runtime::plugins::http::HttpPlugin;
use weft_runtime::{Compiler, Engine, Host, RuntimeMetrics};

use crate::backend_args::BackendArgs;
use crate::image::{self, ImageMetrics, ImageStore, Puller};
use crate::isolation_args::IsolationArgs;
use crate::launcher::{Backoff, Launcher};
use crate::registry_args::{RegistryArgs, user_cache};

/// Where images and compiled components are kept, and how registries are reached.
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Compiled components are kept here between runs [default: $XDG_CACHE_HOME/weft/compiled].
    #[arg(long, env = "WEFT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Which compilers make a component's code. `tiered`: a component larger than
    /// --baseline-above first runs on code from Wasmtime's baseline compiler, Winch (several
    /// times faster to compile), and moves to Cranelift's optimized code once it is compiled;
    /// `cranelift`: Cranelift before starting; `winch`: Winch only (services excepted).
    #[arg(long, value_enum, default_value_t = CompilerArg::Tiered)]
    pub compiler: CompilerArg,
    /// With --compiler tiered, the size above which a component starts on Winch's code.
    #[arg(long, default_value = "1Mi", value_parser = crate::isolation_args::parse_quantity)]
    pub baseline_above: u64,
    /// First wait before retrying a failed pull, or starting a Workload whose backend could
    /// not be reached; it doubles up to five minutes.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub image_pull_backoff: Duration,
    /// Images and compiled components unused for this long are removed.
    #[arg(long, default_value = "7days", value_parser = humantime::parse_duration)]
    pub image_gc_age: Duration,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompilerArg {
    Tiered,
    Cranelift,
    Winch,
}

impl ImageArgs {
    fn compiler(&self) -> Compiler {
        match self.compiler {
            CompilerArg::Tiered => Compiler::Tiered {
                baseline_above: usize::try_from(self.baseline_above).unwrap_or(usize::MAX),
            },
            CompilerArg::Cranelift => Compiler::Cranelift,
            CompilerArg::Winch => Compiler::Winch,
        }
    }
}

const MAX_PULL_BACKOFF: Duration = Duration::from_secs(300);
const GC_INTERVAL: Duration = Duration::from_secs(3600);

pub struct Node {
    pub host: Arc<Host>,
    pub http: Arc<HttpPlugin>,
    pub launcher: Arc<Launcher>,
    pub registry: Registry,
    garbage: Garbage,
}

/// What a host runs for.
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a> {
    /// `host-agent run`; `single` when the manifests hold one Workload (or one WorkloadDeployment's
    /// replicas), which then answers any `Host` header (`curl localhost:8080` just works).
    Local { single: bool },
    /// `host-agent agent`, as this host.
    Cluster { host: &'a str },
}

impl Node {
    /// Builds and starts the host. Locally any hostPath may be mounted; in a cluster only the
    /// hosts a workload claims are routed to it.
    pub async fn start(
        images: &ImageArgs,
        isolation: &IsolationArgs,
        backends: &BackendArgs,
        mode: Mode<'_>,
    ) -> anyhow::Result<Self> {
        let (local, host_name) = match mode {
            Mode::Local { .. } => (true, None),
            Mode::Cluster { host } => (false, Some(host)),
        };
        let mut registry = Registry::default();
        let metrics = RuntimeMetrics::default();
        metrics.register(&mut registry);
        let image_metrics = ImageMetrics::default();
        image_metrics.register(&mut registry);

        let cache_dir = images.cache_dir.clone().or_else(|| user_cache("compiled"));
        let mut engine = Engine::builder()
            .max_instances(isolation.max_instances)
            .max_instance_memory(isolation.max_instance_memory)
            .compiler(images.compiler());
        if let Some(dir) = &cache_dir {
            engine = engine.cache_dir(dir);
        }
        let keyvalue_dir = isolation.state_dir(host_name, "keyvalue")?;
        let blob_dir = isolation.state_dir(host_name, "blobstore")?;
        let plugins = DefaultPlugins::new(
            isolation.egress(),
            matches!(mode, Mode::Local { single: true }),
            backends.offered(&keyvalue_dir, &blob_dir)?,
        );
        let http = plugins.http.clone();
        let image_dir = images.registry.image_dir()?;
        let mut builder = Host::builder()
            .engine(engine.build()?)
            .metrics(metrics)
            .host_path_prefixes(isolation.host_path_prefixes(local))
            .max_timeout(isolation.max_timeout)
            .protect(&image_dir)
            .protect(&keyvalue_dir)
            .protect(&blob_dir)
            .plugins(plugins.all)?;
        if let Some(dir) = isolation.data_dir(host_name)? {
            builder = builder.data_dir(dir);
        }
        if let Some(budget) = isolation.memory_budget {
            builder = builder.memory_budget(budget);
        }
        if let Some(config) = &images.registry.registry_config {
            builder = builder.protect(config);
        }
        if !local {
            // The ServiceAccount token of the agent's Pod: never a volume, whatever is allowed.
            builder = builder.protect("/var/run/secrets").protect("/run/secrets");
        }
        let host = Arc::new(builder.build()?);
        let budget = host.budget().total();
        tracing::info!(
            memory = %weft_runtime::Bytes(budget.memory),
            instances = budget.instances,
            "host budget"
        );
        host.start().await?;
        sweep_idle_instances(&host);

        let store = Arc::new(
            ImageStore::open(&image_dir)
                .with_context(|| format!("opening the image store {}", image_dir.display()))?,
        );
        let proxy = images.registry.proxy(isolation.egress(), local).await?;
        let puller = Arc::new(Puller::new(
            store.clone(),
            images.registry.insecure_registries.clone(),
            image_metrics,
            proxy,
        ));
        let launcher = Arc::new(Launcher::new(
            host.clone(),
            puller.clone(),
            Backoff {
                initial: images.image_pull_backoff,
                max: MAX_PULL_BACKOFF,
            },
        ));
        Ok(Self {
            host,
            http,
            launcher,
            registry,
            garbage: Garbage {
                store,
                puller,
                compiled: cache_dir,
                max_age: images.image_gc_age,
            },
        })
    }

    /// The image store's and compile cache's garbage collector, not started yet.
    pub fn garbage_collector(&self) -> GarbageCollector {
        GarbageCollector {
            garbage: self.garbage.clone(),
            launcher: self.launcher.clone(),
        }
    }
}

/// How often warm instances idle past their pool's `idleTimeout` are dropped.
const IDLE_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// One task for the whole host drops idle warm instances, so an idle Workload costs no task of
/// its own. It ends with the host.
fn sweep_idle_instances(host: &Arc<Host>) {
    let host = Arc::downgrade(host);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(IDLE_SWEEP);
        loop {
            every.tick().await;
            let Some(host) = host.upgrade() else { return };
            host.sweep_idle_instances().await;
        }
    });
}

/// Sweeps the image store and compile cache, keeping what runs and what is assigned.
pub struct GarbageCollector {
    garbage: Garbage,
    launcher: Arc<Launcher>,
}

impl GarbageCollector {
    /// Starts sweeping now and every hour. Each sweep first asks `needed` for the images this
    /// host may have to run: whatever they name is kept (with what runs) however long it went
    /// unused, so a `Never` Workload still finds its image after the host was down for longer
    /// than the GC age. When `needed` cannot tell (`None`), the sweep is skipped.
    pub fn start<F, Needed>(self, needed: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Needed + Send + 'static,
        Needed: Future<Output = Option<Vec<String>>> + Send,
    {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(GC_INTERVAL);
            loop {
                every.tick().await;
                let Some(images) = needed().await else {
                    tracing::info!(
                        "image garbage collection skipped: the images this host may need are not known"
                    );
                    continue;
                };
                let mut keep = self.launcher.digests_in_use().await;
                keep.extend(
                    images
                        .iter()
                        .filter_map(|image| self.garbage.puller.stored_digest(image)),
                );
                self.garbage.collect(&keep);
            }
        })
    }
}

/// What the garbage collector sweeps, and how old unused entries may get.
#[derive(Clone)]
struct Garbage {
    store: Arc<ImageStore>,
    puller: Arc<Puller>,
    compiled: Option<PathBuf>,
    max_age: Duration,
}

impl Garbage {
    fn collect(&self, keep: &std::collections::HashSet<String>) {
        match image::gc::collect(&self.store, self.compiled.as_deref(), self.max_age, keep) {
            Ok(c) if c.blobs + c.compiled > 0 => {
                tracing::info!(
                    blobs = c.blobs,
                    compiled = c.compiled,
                    "removed unused images"
                )
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(%err, store = %self.store.root().display(), "image garbage collection failed")
            }
        }
    }
}
