//! The host: an engine, its plugins, and the workloads it runs. Starting a workload that is
//! already running replaces it only once the new version is ready, so updates never fail a
//! request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{Mutex, broadcast};
use weft_api::WitInterface;

use crate::budget::{Budget, default_memory_budget};
use crate::engine::Engine;
use crate::error::{BackendUnavailable, Error, Result};
use crate::id_locks::IdLocks;
use crate::metrics::RuntimeMetrics;
use crate::plugin::HostPlugin;
use crate::service::Supervisor;
use crate::spec::WorkloadSpec;
use crate::status::{ComponentState, ComponentStatus, StatusEvent, WorkloadStatus};
use crate::template::Templates;
use crate::tier_up::TierUps;
use crate::volumes::VolumePolicy;
use crate::workload::{ResolvedWorkload, plugin_error, resolve};

/// Configures a [`Host`]; see [`Host::builder`].
pub struct HostBuilder {
    engine: Option<Engine>,
    plugins: Vec<Arc<dyn HostPlugin>>,
    metrics: RuntimeMetrics,
    memory_budget: Option<u64>,
    max_timeout: Duration,
    stop_grace: Duration,
    data_dir: Option<PathBuf>,
    host_path_prefixes: Option<Vec<PathBuf>>,
    protected: Vec<PathBuf>,
}

impl HostBuilder {
    /// The longest `limits.timeout` a component may ask for, unless [`HostBuilder::max_timeout`]
    /// says otherwise.
    pub const DEFAULT_MAX_TIMEOUT: Duration = Duration::from_secs(600);
    /// How long the calls of a replaced workload may run on, unless [`HostBuilder::stop_grace`]
    /// says otherwise.
    pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

    /// How long the calls of a stopped workload may run on to finish [default: 10 seconds]:
    /// a rolling update loses no request in flight, and nothing runs on past it.
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Where the host keeps workloads' emptyDirs [default: a temporary directory removed with
    /// the host]. Leftovers of an earlier run are removed at start.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The prefixes hostPath volumes must lie under; `None` allows any path (a local run of
    /// one's own manifest) [default: none is allowed].
    pub fn host_path_prefixes(mut self, prefixes: Option<Vec<PathBuf>>) -> Self {
        self.host_path_prefixes = prefixes;
        self
    }

    /// A directory of the host's own (images, credentials) that no volume may overlap; the
    /// data and compile-cache directories are protected without asking.
    pub fn protect(mut self, dir: impl Into<PathBuf>) -> Self {
        self.protected.push(dir.into());
        self
    }

    /// The engine to compile and run on [default: one with [`Engine::builder`]'s defaults].
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Where the host counts invocations, instances and compiles (register it with a Prometheus
    /// registry to export them).
    pub fn metrics(mut self, metrics: RuntimeMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The memory the host may promise its workloads [default: 80% of its cgroup's or the
    /// machine's memory].
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// The longest `limits.timeout` a component may ask for [default: 10 minutes]; a workload
    /// asking more is refused.
    pub fn max_timeout(mut self, max: Duration) -> Self {
        self.max_timeout = max;
        self
    }

    /// Adds plugins; ids must be unique.
    pub fn plugins(
        mut self,
        plugins: impl IntoIterator<Item = Arc<dyn HostPlugin>>,
    ) -> Result<Self> {
        for plugin in plugins {
            self = self.plugin(plugin)?;
        }
        Ok(self)
    }

    /// Adds a plugin; ids must be unique.
    pub fn plugin(mut self, plugin: Arc<dyn HostPlugin>) -> Result<Self> {
        if self.plugins.iter().any(|p| p.id() == plugin.id()) {
            return Err(Error::DuplicatePlugin {
                plugin: plugin.id().into(),
            });
        }
        self.plugins.push(plugin);
        Ok(self)
    }

    /// Makes the host; call [`Host::start`] before starting workloads.
    pub fn build(self) -> Result<Host> {
        let engine = match self.engine {
            Some(engine) => engine,
            None => Engine::builder().build()?,
        };
        let (data_dir, temp_data) = match self.data_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("weft-data-")
                    .tempdir()
                    .map_err(|e| Error::Engine {
                        what: "cannot create a data directory",
                        source: e.into(),
                    })?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let mut protected = self.protected;
        protected.push(data_dir.clone());
        protected.extend(engine.cache_dir().map(Path::to_path_buf));
        let volumes = VolumePolicy {
            data_dir,
            host_path_prefixes: self.host_path_prefixes,
            protected,
        };
        volumes.clean();
        let budget = Budget::new(
            self.memory_budget.unwrap_or_else(default_memory_budget),
            u64::from(engine.max_instances()),
            engine.max_instance_memory(),
        )
        .max_timeout(self.max_timeout);
        Ok(Host(Arc::new(HostInner {
            stop_grace: self.stop_grace,
            engine,
            budget,
            volumes,
            _temp_data: temp_data,
            plugins: self.plugins,
            metrics: self.metrics,
            workloads: Mutex::new(HashMap::new()),
            changing: IdLocks::default(),
            templates: Templates::default(),
            events: broadcast::channel(256).0,
            tier_ups: TierUps::default(),
        })))
    }
}

pub(crate) struct Running {
    pub(crate) workload: Arc<ResolvedWorkload>,
    service: Option<Supervisor>,
}

/// Runs workloads: starts, updates and stops them, and reports their status. One per process
/// is the intent; everything in it is shared by the workloads it runs.
pub struct Host(pub(crate) Arc<HostInner>);

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    budget: Budget,
    volumes: VolumePolicy,
    _temp_data: Option<tempfile::TempDir>,
    plugins: Vec<Arc<dyn HostPlugin>>,
    pub(crate) metrics: RuntimeMetrics,
    pub(crate) workloads: Mutex<HashMap<String, Running>>,
    /// Serializes the starts, updates and stops of each workload, not of the host.
    changing: IdLocks,
    stop_grace: Duration,
    templates: Templates,
    events: broadcast::Sender<StatusEvent>,
    /// Workloads being moved from baseline code to Cranelift's.
    pub(crate) tier_ups: TierUps,
}

impl Host {
    /// A builder with no plugins, an engine with defaults, a memory budget from the machine's
    /// memory and a temporary data directory.
    pub fn builder() -> HostBuilder {
        HostBuilder {
            engine: None,
            plugins: Vec::new(),
            metrics: RuntimeMetrics::default(),
            memory_budget: None,
            max_timeout: HostBuilder::DEFAULT_MAX_TIMEOUT,
            stop_grace: HostBuilder::DEFAULT_STOP_GRACE,
            data_dir: None,
            host_path_prefixes: Some(Vec::new()),
            protected: Vec::new(),
        }
    }

    /// The engine workloads run on.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The host's metrics.
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.0.metrics
    }

    /// The memory and instance slots the host promises, and what its workloads hold of them.
    pub fn budget(&self) -> &Budget {
        &self.0.budget
    }

    /// Service state changes as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.0.events.subscribe()
    }

    /// The interfaces this host's plugins serve, with the backends offered for each (default
    /// first).
    pub fn served_interfaces(&self) -> Vec<(WitInterface, Vec<&'static str>)> {
        self.0
            .plugins
            .iter()
            .flat_map(|p| {
                let world = p.world();
                let backends = p.backends();
                world
                    .imports
                    .into_iter()
                    .chain(world.exports)
                    .map(move |i| (i, backends.clone()))
            })
            .collect()
    }

    /// Starts every plugin; call once before starting workloads.
    pub async fn start(&self) -> Result<()> {
        for plugin in &self.0.plugins {
            plugin
                .start()
                .await
                .map_err(|e| plugin_error(plugin.as_ref(), e))?;
        }
        Ok(())
    }

    /// Starts a workload, or replaces the running one with the same id once the new version is
    /// ready. On error the old version (if any) keeps running.
    pub async fn start_workload(&self, spec: WorkloadSpec) -> Result<WorkloadStatus> {
        // Cheap: the components' bytes are shared, and kept only while a tier-up needs them.
        let original = spec.clone();
        let (status, started) = self
            .apply(spec, None)
            .await?
            .expect("an unconditional start always applies");
        self.tier_up_later(original, &started);
        Ok(status)
    }

    /// Starts or replaces a workload; with `only_if`, only while that version is the one
    /// running (else nothing happens and `None` is returned).
    pub(crate) async fn apply(
        &self,
        spec: WorkloadSpec,
        only_if: Option<&Weak<ResolvedWorkload>>,
    ) -> Result<Option<(WorkloadStatus, Arc<ResolvedWorkload>)>> {
        let id = spec.id();
        // Only this workload's own changes wait; the map is locked just to read and to swap.
        let _changing = self.0.changing.lock(&id).await;
        if let Some(expected) = only_if {
            let current = self
                .0
                .workloads
                .lock()
                .await
                .get(&id)
                .map(|r| Arc::as_ptr(&r.workload));
            if current != Some(expected.as_ptr()) {
                return Ok(None);
            }
        }
        let previous = self.0.budget.reserve(&spec)?;
        let previous_version = self
            .0
            .workloads
            .lock()
            .await
            .get(&id)
            .map(|r| r.workload.clone());
        let running = match self.prepare(spec, previous_version).await {
            Ok(running) => running,
            Err(err) => {
                self.0.budget.restore(&id, previous);
                return Err(err);
            }
        };
        let status = status_of(&running);
        let started = running.workload.clone();
        let still = running.workload.plugins.clone();
        let old = self.0.workloads.lock().await.insert(id.clone(), running);
        if let Some(old) = old {
            // Routes were swapped by on_workload_resolved; plugins the new version no longer
            // uses let go of it now.
            for plugin in &self.0.plugins {
                if old.workload.plugins.contains(&plugin.id()) && !still.contains(&plugin.id()) {
                    let _ = plugin.on_workload_unbind(&id).await;
                }
            }
            tracing::info!(workload = %id, "workload updated");
        } else {
            tracing::info!(workload = %id, "workload started");
        }
        Ok(Some((status, started)))
    }

    /// Resolves a workload, hands it to its plugins and starts its service. If a plugin
    /// refuses it, the plugins that took it already go back to `previous` (or let go of it).
    async fn prepare(
        &self,
        spec: WorkloadSpec,
        previous: Option<Arc<ResolvedWorkload>>,
    ) -> Result<Running> {
        let workload = Arc::new(
            resolve(
                &self.0.engine,
                &self.0.templates,
                &self.0.plugins,
                &self.0.metrics,
                &self.0.volumes,
                spec,
            )
            .await?,
        );
        let bound: Vec<&Arc<dyn HostPlugin>> = self
            .0
            .plugins
            .iter()
            .filter(|p| workload.plugins.contains(&p.id()))
            .collect();
        for (i, plugin) in bound.iter().enumerate() {
            let Err(err) = plugin.on_workload_resolved(&workload).await else {
                continue;
            };
            for taken in &bound[..i] {
                let restored = match &previous {
                    Some(old) if old.plugins.contains(&taken.id()) => {
                        taken.on_workload_resolved(old).await
                    }
                    _ => taken.on_workload_unbind(&workload.id()).await,
                };
                if let Err(e) = restored {
                    tracing::warn!(plugin = taken.id(), workload = %workload.id(), err = %format!("{e:#}"), "rolling back failed");
                }
            }
            return Err(match err.downcast::<BackendUnavailable>() {
                Ok(source) => Error::BackendUnavailable {
                    plugin: plugin.id().into(),
                    source,
                },
                Err(e) => plugin_error(plugin.as_ref(), e),
            });
        }
        let service = match (&workload.service, &workload.spec.service) {
            (Some(runtime), Some(spec)) => Some(
                Supervisor::start(runtime.clone(), spec.max_restarts, self.0.events.clone())
                    .map_err(|e| Error::InvalidComponent {
                        component: spec.component.name.clone(),
                        reason: format!("{e:#}"),
                    })?,
            ),
            _ => None,
        };
        Ok(Running { workload, service })
    }

    /// Stops a workload: its routes go first, then its service and instances.
    /// Stops a workload: it takes no new calls at once, and the calls it has running end within
    /// the stop grace (see [`HostBuilder::stop_grace`]).
    pub async fn stop_workload(&self, id: &str) -> Result<()> {
        self.stop(id, self.0.stop_grace).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        let _changing = self.0.changing.lock(id).await;
        let running = self
            .0
            .workloads
            .lock()
            .await
            .remove(id)
            .ok_or_else(|| Error::UnknownWorkload(id.to_string()))?;
        for plugin in &self.0.plugins {
            if running.workload.plugins.contains(&plugin.id())
                && let Err(err) = plugin.on_workload_unbind(id).await
            {
                tracing::warn!(plugin = plugin.id(), workload = id, err = %format!("{err:#}"), "unbind failed");
            }
        }
        for component in running
            .workload
            .components
            .iter()
            .chain(&running.workload.service)
        {
            component.forget_metrics();
        }
        if let Some(service) = &running.workload.service {
            service.stop();
        }
        // Calls still running (an HTTP body being written, a message handler, a linked call)
        // may finish within the grace, then end, not at their deadline: nothing of a stopped
        // workload runs on long outside its budget.
        let components = running.workload.components.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            components.iter().for_each(|c| c.stop());
        });
        drop(running);
        self.0.budget.release(id);
        self.0.volumes.remove(id);
        tracing::info!(workload = id, "workload stopped");
        Ok(())
    }

    /// The status of the workload `id` (`namespace/name`), if it runs here.
    pub async fn status(&self, id: &str) -> Option<WorkloadStatus> {
        self.0.workloads.lock().await.get(id).map(status_of)
    }

    /// The ids of the running workloads, without building their statuses.
    pub async fn workload_ids(&self) -> Vec<String> {
        self.0.workloads.lock().await.keys().cloned().collect()
    }

    /// The status of every workload running here, by id.
    pub async fn statuses(&self) -> Vec<WorkloadStatus> {
        let workloads = self.0.workloads.lock().await;
        let mut all: Vec<_> = workloads.values().map(status_of).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Drops warm instances idle past their pool's idle timeout, across every workload. The
    /// host-agent calls it periodically: one sweep for the host, no task per workload.
    pub async fn sweep_idle_instances(&self) {
        let workloads = self.0.workloads.lock().await;
        for running in workloads.values() {
            for component in &running.workload.components {
                component.sweep_idle();
            }
        }
    }

    /// Stops every workload, then every plugin.
    pub async fn shutdown(&self) {
        self.0.engine.close();
        self.0.tier_ups.abort_all();
        let ids: Vec<String> = self.0.workloads.lock().await.keys().cloned().collect();
        for id in ids {
            let _ = self.stop(&id, Duration::ZERO).await;
        }
        for plugin in &self.0.plugins {
            if let Err(err) = plugin.stop().await {
                tracing::warn!(plugin = plugin.id(), err = %format!("{err:#}"), "plugin stop failed");
            }
        }
    }
}

fn status_of(running: &Running) -> WorkloadStatus {
    let workload = &running.workload;
    let mut components: Vec<ComponentStatus> = workload
        .components
        .iter()
        .map(|c| ComponentStatus {
            name: c.spec.name.clone(),
            digest: c.info.digest.clone(),
            state: ComponentState::Running,
            restarts: 0,
            message: None,
            image_id: c.spec.image_id.clone(),
            imports: c.info.imports.clone(),
            exports: c.info.exports.clone(),
            is_service: false,
            tier: c.template.code.tier,
        })
        .collect();
    if let (Some(runtime), Some(supervisor)) = (&workload.service, &running.service) {
        let status = supervisor.status();
        components.push(ComponentStatus {
            name: runtime.spec.name.clone(),
            digest: runtime.info.digest.clone(),
            state: status.state,
            restarts: status.restarts,
            message: status.message,
            image_id: runtime.spec.image_id.clone(),
            imports: runtime.info.imports.clone(),
            exports: runtime.info.exports.clone(),
            is_service: true,
            tier: runtime.template.code.tier,
        });
    }
    WorkloadStatus {
        id: workload.id(),
        components,
    }
}
