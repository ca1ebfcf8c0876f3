//! Gets a Workload from its manifest to running: pulls every component's image (retrying with
//! back-off where waiting can help), then hands the workload to the runtime (again with back-off
//! while a backend it needs is unreachable). While images are
//! pulled, the workload's status says so in the kubelet's words (`ErrImagePull`,
//! `ImagePullBackOff`).

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use weft_api::{Component, ComponentState, ComponentStatus, Workload, error_chain};
use weft_runtime::Host;

use crate::convert::{self, ConvertError, Image};
use crate::image::{Credentials, ImageSource, PullError, Puller, effective_policy};
use crate::lifecycle::{Reason, Reports};
use crate::observed::Observed;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Convert(#[from] ConvertError),
    #[error("component {component}: image {image}: {error}")]
    Pull {
        component: String,
        image: String,
        error: PullError,
    },
    #[error(transparent)]
    Runtime(#[from] weft_runtime::Error),
}

/// Pull retries wait `initial`, doubling up to `max`, as the kubelet's image back-off does.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

pub struct Launcher {
    host: Arc<Host>,
    puller: Arc<Puller>,
    backoff: Backoff,
    /// Workloads whose images are not all pulled yet, with what their status says meanwhile.
    pending: Mutex<HashMap<String, Observed>>,
    reports: Reports,
}

impl Launcher {
    pub fn new(host: Arc<Host>, puller: Arc<Puller>, backoff: Backoff) -> Self {
        Self {
            host,
            puller,
            backoff,
            pending: Mutex::default(),
            reports: Reports::default(),
        }
    }

    /// Pulls and starts `workload` (or updates it if it runs). `files_from` allows file images
    /// relative to that directory (local mode). Retryable pull failures are retried until they
    /// succeed; the others end the launch, and stay in the status until [`Launcher::forget`].
    /// A span (`launch`, with `pull` per component and `compile and start`), its own trace.
    #[tracing::instrument(name = "launch", skip_all, fields(workload = %id_of(workload)))]
    pub async fn launch(
        &self,
        workload: &Workload,
        files_from: Option<PathBuf>,
        credentials: &Credentials,
    ) -> Result<Observed, LaunchError> {
        convert::check(workload)?;
        let id = id_of(workload);
        let components: Vec<&Component> = workload.spec.all_components().collect();
        let service = workload
            .spec
            .service
            .as_ref()
            .map(|s| s.component.name.as_str());
        let mut delay = self.backoff.initial;
        loop {
            self.set_pending(&id, &components, |_| ("Pulling".into(), None));
            let results = futures::future::join_all(
                components
                    .iter()
                    .map(|c| self.pull(&id, c, files_from.as_deref(), credentials)),
            )
            .await;
            let mut images = BTreeMap::new();
            let mut failed: Vec<(&Component, PullError)> = Vec::new();
            for (component, result) in components.iter().zip(results) {
                match result {
                    Ok(image) => {
                        images.insert(component.name.clone(), image);
                    }
                    Err(err) => failed.push((component, err)),
                }
            }
            if failed.is_empty() {
                let spec = convert::to_spec(workload, &images)?;
                // Compiled now, or found compiled; a big component takes a while.
                self.set_pending(&id, &components, |_| ("Compiling".into(), None));
                let start = tracing::info_span!("compile and start");
                match self.host.start_workload(spec).instrument(start).await {
                    // A backend it needs is down: the workload waits, saying why, and tries
                    // again as pulls do.
                    Err(err) if err.is_retryable() => {
                        let message = format!("Back-off starting: {}", error_chain(&err));
                        tracing::warn!(workload = %id, retry_in = ?delay, "{message}");
                        self.reports
                            .send(&id, None, Reason::BackOff, message.clone());
                        self.set_pending(&id, &components, |_| {
                            ("BackendBackOff".into(), Some(message.clone()))
                        });
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(self.backoff.max);
                        continue;
                    }
                    started => {
                        self.forget(&id);
                        let started = started?;
                        for component in &components {
                            self.reports.send(
                                &id,
                                Some(&component.name),
                                Reason::Started,
                                format!("Started {}", what(component, service)),
                            );
                        }
                        return Ok(Observed::from_runtime(&started));
                    }
                }
            }

            let by_name: HashMap<&str, &PullError> =
                failed.iter().map(|(c, e)| (c.name.as_str(), e)).collect();
            let describe = |c: &Component, backing_off: bool| match by_name.get(c.name.as_str()) {
                Some(err) if backing_off && err.retryable() => (
                    "ImagePullBackOff".to_string(),
                    Some(format!("Back-off pulling image {:?}: {err}", c.image)),
                ),
                Some(err) => (err.reason().to_string(), Some(err.to_string())),
                None => ("Pulled".to_string(), None),
            };
            self.set_pending(&id, &components, |c| describe(c, false));
            for (component, err) in &failed {
                tracing::warn!(workload = %id, component = %component.name, image = %component.image, reason = err.reason(), "{err}");
            }
            if failed.iter().any(|(_, e)| !e.retryable()) {
                drop(by_name);
                let (component, error) = failed
                    .into_iter()
                    .find(|(_, e)| !e.retryable())
                    .expect("one is not retryable");
                return Err(LaunchError::Pull {
                    component: component.name.clone(),
                    image: component.image.clone(),
                    error,
                });
            }
            self.set_pending(&id, &components, |c| describe(c, true));
            tracing::info!(workload = %id, retry_in = ?delay, "back-off pulling images");
            for (component, _) in &failed {
                self.reports.send(
                    &id,
                    Some(&component.name),
                    Reason::BackOff,
                    format!("Back-off pulling image {:?}", component.image),
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.backoff.max);
        }
    }

    /// Pulls one component's image, reporting as the kubelet does (Pulling, then Pulled or
    /// Failed).
    #[tracing::instrument(
        name = "pull",
        skip_all,
        fields(component = %component.name, image = %component.image)
    )]
    async fn pull(
        &self,
        id: &str,
        component: &Component,
        files_from: Option<&std::path::Path>,
        credentials: &Credentials,
    ) -> Result<Image, PullError> {
        let report = |reason, message| {
            self.reports
                .send(id, Some(&component.name), reason, message)
        };
        let image = &component.image;
        let pulled = self
            .pull_image(component, files_from, credentials, &report)
            .await;
        if let Err(err) = &pulled {
            report(
                Reason::Failed,
                format!("Failed to pull image {image:?}: {err}"),
            );
        }
        pulled
    }

    async fn pull_image(
        &self,
        component: &Component,
        files_from: Option<&std::path::Path>,
        credentials: &Credentials,
        report: &impl Fn(Reason, String),
    ) -> Result<Image, PullError> {
        match ImageSource::parse(&component.image, files_from)? {
            ImageSource::File(path) => {
                let wasm = tokio::fs::read(&path).await.map_err(|e| PullError::File {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Ok(Image {
                    wasm: wasm.into(),
                    image_id: None,
                })
            }
            ImageSource::Registry(reference) => {
                let policy = effective_policy(&component.image, component.image_pull_policy);
                // Only an image that is not already stored is announced as pulled, as the
                // kubelet does: one Event less per start from a cached image.
                let announce = || {
                    report(
                        Reason::Pulling,
                        format!("Pulling image {:?}", component.image),
                    )
                };
                let pulled = (self.puller)
                    .pull(&reference, policy, credentials, announce)
                    .await?;
                tracing::info!(component = %component.name, image = %component.image, digest = %pulled.digest, downloaded = pulled.downloaded, "image ready");
                report(
                    Reason::Pulled,
                    if pulled.downloaded {
                        format!(
                            "Successfully pulled image {:?} ({})",
                            component.image, pulled.digest
                        )
                    } else {
                        format!(
                            "Image {:?} ({}) already present on the host",
                            component.image, pulled.digest
                        )
                    },
                );
                Ok(Image {
                    wasm: pulled.wasm,
                    image_id: Some(pulled.image_id),
                })
            }
        }
    }

    fn set_pending(
        &self,
        id: &str,
        components: &[&Component],
        describe: impl Fn(&Component) -> (String, Option<String>),
    ) {
        let status = Observed {
            id: id.to_string(),
            components: components
                .iter()
                .map(|c| {
                    let (reason, message) = describe(c);
                    ComponentStatus {
                        name: c.name.clone(),
                        state: ComponentState::Waiting,
                        reason: Some(reason),
                        message,
                        ..ComponentStatus::default()
                    }
                })
                .collect(),
        };
        self.pending.lock().insert(id.to_string(), status);
    }

    /// Drops what the status says about a launch that no longer matters.
    pub fn forget(&self, id: &str) {
        self.pending.lock().remove(id);
    }

    /// Every workload: those running as the runtime reports them, then those still pulling.
    pub async fn statuses(&self) -> Vec<Observed> {
        let mut all: Vec<Observed> = self
            .host
            .statuses()
            .await
            .iter()
            .map(Observed::from_runtime)
            .collect();
        let pending = self.pending.lock().clone();
        for (id, status) in pending {
            if !all.iter().any(|s| s.id == id) {
                all.push(status);
            }
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// What the launcher reports as it pulls and starts workloads (for Events).
    pub fn reports(&self) -> &Reports {
        &self.reports
    }

    /// Changes of component state the runtime broadcasts (service restarts, give-ups).
    pub fn host_events(&self) -> tokio::sync::broadcast::Receiver<weft_runtime::StatusEvent> {
        self.host.subscribe()
    }

    /// One workload's status: running, or still pulling.
    pub async fn status(&self, id: &str) -> Option<Observed> {
        if let Some(status) = self.host.status(id).await {
            return Some(Observed::from_runtime(&status));
        }
        self.pending.lock().get(id).cloned()
    }

    /// The ids of every workload this launcher knows: running or pulling.
    pub async fn ids(&self) -> std::collections::HashSet<String> {
        // Polled twice a second by the agent: ids only, no status building.
        let mut ids: std::collections::HashSet<String> =
            self.host.workload_ids().await.into_iter().collect();
        ids.extend(self.pending.lock().keys().cloned());
        ids
    }

    /// Stops a workload wherever it is: running on the host, or pending.
    pub async fn stop(&self, id: &str) {
        self.forget(id);
        match self.host.stop_workload(id).await {
            Ok(()) | Err(weft_runtime::Error::UnknownWorkload(_)) => {}
            Err(err) => tracing::warn!(workload = id, %err, "stopping"),
        }
    }

    /// The digests of every running component: garbage collection keeps them.
    pub async fn digests_in_use(&self) -> std::collections::HashSet<String> {
        self.host
            .statuses()
            .await
            .into_iter()
            .flat_map(|s| s.components.into_iter().map(|c| c.digest))
            .collect()
    }
}

/// "component c" or "service s", for messages.
fn what(component: &Component, service: Option<&str>) -> String {
    if service == Some(component.name.as_str()) {
        format!("service {}", component.name)
    } else {
        format!("component {}", component.name)
    }
}

/// `namespace/name`, as the runtime names workloads.
pub fn id_of(workload: &Workload) -> String {
    format!(
        "{}/{}",
        workload.metadata.namespace.as_deref().unwrap_or("default"),
        workload.metadata.name.as_deref().unwrap_or_default()
    )
}
