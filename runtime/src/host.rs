//! The host: an engine, its plugins, and the workloads it runs. Starting a workload that is
//! already running replaces it only once the new version is ready, so updates never fail a
//! request.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, broadcast};
use weft_api::WitInterface;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::metrics::RuntimeMetrics;
use crate::plugin::HostPlugin;
use crate::service::Supervisor;
use crate::spec::WorkloadSpec;
use crate::status::{ComponentState, ComponentStatus, StatusEvent, WorkloadStatus};
use crate::workload::{ResolvedWorkload, resolve};

pub struct HostBuilder {
    engine: Option<Engine>,
    plugins: Vec<Arc<dyn HostPlugin>>,
    metrics: RuntimeMetrics,
}

impl HostBuilder {
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    pub fn metrics(mut self, metrics: RuntimeMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Adds plugins; ids must be unique.
    pub fn plugins(mut self, plugins: impl IntoIterator<Item = Arc<dyn HostPlugin>>) -> Result<Self> {
        for plugin in plugins {
            self = self.plugin(plugin)?;
        }
        Ok(self)
    }

    /// Adds a plugin; ids must be unique.
    pub fn plugin(mut self, plugin: Arc<dyn HostPlugin>) -> Result<Self> {
        if self.plugins.iter().any(|p| p.id() == plugin.id()) {
            return Err(Error::Plugin {
                plugin: plugin.id().into(),
                reason: "registered twice".into(),
            });
        }
        self.plugins.push(plugin);
        Ok(self)
    }

    pub fn build(self) -> Result<Host> {
        let engine = match self.engine {
            Some(engine) => engine,
            None => Engine::builder().build()?,
        };
        Ok(Host {
            engine,
            plugins: self.plugins,
            metrics: self.metrics,
            workloads: Mutex::new(HashMap::new()),
            events: broadcast::channel(256).0,
        })
    }
}

struct Running {
    workload: Arc<ResolvedWorkload>,
    service: Option<Supervisor>,
}

pub struct Host {
    engine: Engine,
    plugins: Vec<Arc<dyn HostPlugin>>,
    metrics: RuntimeMetrics,
    workloads: Mutex<HashMap<String, Running>>,
    events: broadcast::Sender<StatusEvent>,
}

impl Host {
    pub fn builder() -> HostBuilder {
        HostBuilder {
            engine: None,
            plugins: Vec::new(),
            metrics: RuntimeMetrics::default(),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
    }

    /// Service state changes as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.events.subscribe()
    }

    /// The interfaces this host's plugins serve, with the plugin's backend.
    pub fn served_interfaces(&self) -> Vec<(WitInterface, &'static str)> {
        self.plugins
            .iter()
            .flat_map(|p| {
                let world = p.world();
                world
                    .imports
                    .into_iter()
                    .chain(world.exports)
                    .map(move |i| (i, p.backend()))
            })
            .collect()
    }

    /// Starts every plugin; call once before starting workloads.
    pub async fn start(&self) -> Result<()> {
        for plugin in &self.plugins {
            plugin.start().await.map_err(|e| Error::Plugin {
                plugin: plugin.id().into(),
                reason: format!("{e:#}"),
            })?;
        }
        Ok(())
    }

    /// Starts a workload, or replaces the running one with the same id once the new version is
    /// ready. On error the old version (if any) keeps running.
    pub async fn start_workload(&self, spec: WorkloadSpec) -> Result<WorkloadStatus> {
        let id = spec.id();
        let mut workloads = self.workloads.lock().await;
        let workload = Arc::new(resolve(&self.engine, &self.plugins, &self.metrics, spec).await?);
        for plugin in &self.plugins {
            if workload.plugins.contains(&plugin.id()) {
                plugin
                    .on_workload_resolved(&workload)
                    .await
                    .map_err(|e| Error::Plugin {
                        plugin: plugin.id().into(),
                        reason: format!("{e:#}"),
                    })?;
            }
        }
        let service = match (&workload.service, &workload.spec.service) {
            (Some(runtime), Some(spec)) => Some(
                Supervisor::start(
                    runtime.clone(),
                    spec.max_restarts,
                    self.metrics.clone(),
                    self.events.clone(),
                )
                .map_err(|e| Error::InvalidComponent {
                    component: spec.component.name.clone(),
                    reason: format!("{e:#}"),
                })?,
            ),
            _ => None,
        };
        let replaced = workloads.insert(id.clone(), Running { workload, service });
        if let Some(old) = replaced {
            // Routes were swapped by on_workload_resolved; plugins the new version no longer
            // uses let go of it now.
            let still = &workloads[&id].workload.plugins;
            for plugin in &self.plugins {
                if old.workload.plugins.contains(&plugin.id()) && !still.contains(&plugin.id()) {
                    let _ = plugin.on_workload_unbind(&id).await;
                }
            }
            tracing::info!(workload = %id, "workload updated");
        } else {
            tracing::info!(workload = %id, "workload started");
        }
        Ok(status_of(&workloads[&id]))
    }

    /// Stops a workload: its routes go first, then its service and instances.
    pub async fn stop_workload(&self, id: &str) -> Result<()> {
        let running = self
            .workloads
            .lock()
            .await
            .remove(id)
            .ok_or_else(|| Error::UnknownWorkload(id.to_string()))?;
        for plugin in &self.plugins {
            if running.workload.plugins.contains(&plugin.id())
                && let Err(err) = plugin.on_workload_unbind(id).await
            {
                tracing::warn!(plugin = plugin.id(), workload = id, err = %format!("{err:#}"), "unbind failed");
            }
        }
        drop(running);
        tracing::info!(workload = id, "workload stopped");
        Ok(())
    }

    pub async fn status(&self, id: &str) -> Option<WorkloadStatus> {
        self.workloads.lock().await.get(id).map(status_of)
    }

    /// The ids of the running workloads, without building their statuses.
    pub async fn workload_ids(&self) -> Vec<String> {
        self.workloads.lock().await.keys().cloned().collect()
    }

    pub async fn statuses(&self) -> Vec<WorkloadStatus> {
        let workloads = self.workloads.lock().await;
        let mut all: Vec<_> = workloads.values().map(status_of).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Stops every workload, then every plugin.
    pub async fn shutdown(&self) {
        let ids: Vec<String> = self.workloads.lock().await.keys().cloned().collect();
        for id in ids {
            let _ = self.stop_workload(&id).await;
        }
        for plugin in &self.plugins {
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
            reason: None,
            restarts: 0,
            message: None,
            image: c.spec.image.clone(),
            image_id: c.spec.image_id.clone(),
            imports: c.info.imports.clone(),
            exports: c.info.exports.clone(),
            is_service: false,
        })
        .collect();
    if let (Some(runtime), Some(supervisor)) = (&workload.service, &running.service) {
        let status = supervisor.status();
        components.push(ComponentStatus {
            name: runtime.spec.name.clone(),
            digest: runtime.info.digest.clone(),
            state: status.state,
            reason: None,
            restarts: status.restarts,
            message: status.message,
            image: runtime.spec.image.clone(),
            image_id: runtime.spec.image_id.clone(),
            imports: runtime.info.imports.clone(),
            exports: runtime.info.exports.clone(),
            is_service: true,
        });
    }
    WorkloadStatus {
        id: workload.id(),
        components,
    }
}
