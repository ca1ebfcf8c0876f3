//! Runs the Workloads labelled with this host's name: a kube-runtime controller over exactly
//! those, launching (pull + start) each new generation in its own task, reporting status with
//! this agent's field manager, and stopping whatever leaves the watch. While the agent is
//! fenced (its Lease may have run out, see `lease.rs`) it runs nothing; when the fence lifts,
//! every Workload still assigned here is reconciled again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::watch;
use weft_api::Workload;
use weft_api::assignment::Assignment;
use weft_api::labels::{HOST_AGENT_FIELD_MANAGER, HOST_LABEL};

use super::host_object::Registration;
use super::{pull_secrets, status};
use crate::launcher::{Launcher, id_of};
use crate::lifecycle::Reason;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status of {workload}: {source}")]
    Status {
        workload: String,
        source: kube::Error,
    },
}

/// Why everything stops while fenced.
const FENCED: &str = "this host could not renew its Lease, so the operator may move its \
                      Workloads; they run again here if they are still assigned when it can";

/// A workload's launch task, and the generation it launches.
struct Launch {
    generation: Option<i64>,
    task: tokio::task::JoinHandle<()>,
}

struct Ctx {
    client: kube::Client,
    host: String,
    launcher: Arc<Launcher>,
    /// The generation each workload's launch task is for.
    launches: Mutex<HashMap<String, Launch>>,
    /// Why a launch failed for good, until the next generation.
    failures: Mutex<HashMap<String, String>>,
    /// The last status applied per workload, so unchanged status is not written again.
    applied: Mutex<HashMap<String, serde_json::Value>>,
    /// One writer at a time per workload: a report computed earlier must never land after
    /// (and over) one computed later, or the dedup above would keep the stale one forever.
    reporting: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    store: Store<Workload>,
    /// True while this host's Lease may have run out.
    fenced: watch::Receiver<bool>,
}

pub struct Reconciler {
    store: Store<Workload>,
    host: String,
    done: tokio::task::JoinHandle<()>,
}

impl Reconciler {
    /// Workloads still assigned to this host.
    pub fn assigned(&self) -> usize {
        self.assignments().workloads().len()
    }

    /// The Workloads labelled with this host, as its watch sees them.
    pub fn store(&self) -> Store<Workload> {
        self.store.clone()
    }

    /// What is assigned to this host, as its watch sees it.
    pub fn assignments(&self) -> Assignments {
        Assignments {
            store: self.store.clone(),
            host: self.host.clone(),
        }
    }

    pub async fn finished(self) {
        let _ = self.done.await;
    }
}

/// The Workloads assigned to this host, read from the reconciler's watch.
#[derive(Clone)]
pub struct Assignments {
    store: Store<Workload>,
    host: String,
}

impl Assignments {
    /// Waits until the watch has listed this host's Workloads once; false if it never will.
    pub async fn known(&self) -> bool {
        self.store.wait_until_ready().await.is_ok()
    }

    fn workloads(&self) -> Vec<Arc<Workload>> {
        self.store
            .state()
            .into_iter()
            .filter(|w| w.assignment().host() == Some(self.host.as_str()))
            .collect()
    }

    /// The images of every component and service assigned here.
    pub fn images(&self) -> Vec<String> {
        self.workloads()
            .iter()
            .flat_map(|w| {
                w.spec
                    .all_components()
                    .map(|c| c.image.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

pub fn start(
    client: kube::Client,
    host: String,
    launcher: Arc<Launcher>,
    registration: Arc<Registration>,
    fenced: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) -> Reconciler {
    let api: Api<Workload> = Api::all(client.clone());
    let selector = format!("{HOST_LABEL}={host}");
    let controller = Controller::new(api, watcher::Config::default().labels(&selector));
    let store = controller.store();
    let ctx = Arc::new(Ctx {
        client,
        host: host.clone(),
        launcher,
        launches: Mutex::default(),
        failures: Mutex::default(),
        applied: Mutex::default(),
        reporting: Mutex::default(),
        store: store.clone(),
        fenced: fenced.clone(),
    });

    // Service restarts and give-ups change status without any change to the object.
    let mut events = ctx.launcher.host_events();
    let event_ctx = ctx.clone();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let Some((ns, name)) = event.workload.split_once('/')
                && let Some(workload) = event_ctx.store.get(&ObjectRef::new(name).within(ns))
                && let Err(err) = event_ctx.report(&workload).await
            {
                tracing::warn!(%err, "status update failed");
            }
        }
    });

    tokio::spawn(janitor(ctx.clone(), store.clone(), registration));
    tokio::spawn(fence(ctx.clone()));
    // When the fence lifts, everything still assigned here is started again.
    let unfenced = futures::stream::unfold(fenced, |mut fenced| async move {
        fenced.wait_for(|f| *f).await.ok()?;
        fenced.wait_for(|f| !*f).await.ok()?;
        Some(((), fenced))
    });

    let mut shutdown = stop.clone();
    let done = tokio::spawn(async move {
        controller
            .reconcile_all_on(unfenced)
            .graceful_shutdown_on(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            })
            .run(reconcile, error_policy, ctx)
            .for_each(|_| async {})
            .await;
    });
    let _ = stop.borrow_and_update();
    Reconciler { store, host, done }
}

async fn reconcile(workload: Arc<Workload>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let id = id_of(&workload);
    if *ctx.fenced.borrow() {
        ctx.stop(&id, FENCED).await;
        return Ok(Action::await_change());
    }
    let mine = workload.labels().get(HOST_LABEL) == Some(&ctx.host);
    let deleting = workload.metadata.deletion_timestamp.is_some();
    // Only what the operator assigned (and recorded): never a label a tenant set.
    let assignment = workload.assignment();
    if deleting || assignment.host() != Some(ctx.host.as_str()) {
        let why = if deleting {
            "the Workload is being deleted"
        } else {
            "the Workload is no longer assigned to this host"
        };
        ctx.stop(&id, why).await;
        if mine && deleting {
            // Tells the operator it may release the finalizer.
            ctx.apply(
                &workload,
                &id,
                status::report(
                    &workload,
                    status::Known::Stopped,
                    ctx.previous(&id).as_ref(),
                ),
            )
            .await?;
        }
        return Ok(Action::await_change());
    }

    // A new spec runs once the operator has recorded the assignment for it; until then the
    // current one keeps running.
    let generation = workload.metadata.generation;
    let relaunch = matches!(assignment, Assignment::Current(_))
        && match ctx.launches.lock().expect("launches").get(&id) {
            Some(launch) => launch.generation != generation,
            None => true,
        };
    if relaunch {
        ctx.launch(workload.clone(), id.clone());
    }

    let ready = ctx.report(&workload).await?;
    Ok(Action::requeue(if ready {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(1)
    }))
}

fn error_policy(workload: Arc<Workload>, err: &Error, _: Arc<Ctx>) -> Action {
    tracing::warn!(workload = %id_of(&workload), %err, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

impl Ctx {
    /// Writes what the host knows of `workload` now; returns whether it is Ready.
    async fn report(&self, workload: &Workload) -> Result<bool, Error> {
        let id = id_of(workload);
        let turn = self
            .reporting
            .lock()
            .expect("reporting")
            .entry(id.clone())
            .or_default()
            .clone();
        let _turn = turn.lock().await;
        let current = self.launcher.status(&id).await;
        let failure = self.failures.lock().expect("failures").get(&id).cloned();
        let launching = self.launches.lock().expect("launches").contains_key(&id);
        let known = match (&failure, &current) {
            (Some(failure), _) => status::Known::Failed(failure),
            (None, Some(current)) => status::Known::Status(current),
            (None, None) if launching => status::Known::Launching,
            (None, None) => status::Known::Stopped,
        };
        let ready =
            matches!(known, status::Known::Status(s) if s.ready() && !s.components.is_empty());
        let previous = self.previous(&id);
        self.apply(
            workload,
            &id,
            status::report(workload, known, previous.as_ref()),
        )
        .await?;
        Ok(ready)
    }

    /// The `Ready` condition this agent last applied for `id`.
    fn previous(&self, id: &str) -> Option<Condition> {
        let applied = self.applied.lock().expect("applied");
        let condition = applied.get(id)?.pointer("/status/conditions/0")?.clone();
        serde_json::from_value(condition).ok()
    }

    fn launch(self: &Arc<Self>, workload: Arc<Workload>, id: String) {
        let ctx = self.clone();
        let generation = workload.metadata.generation;
        self.failures.lock().expect("failures").remove(&id);
        let task_id = id.clone();
        let task = tokio::spawn(async move {
            let credentials = pull_secrets::credentials(&ctx.client, &workload).await;
            let spec = with_claimed_hosts(&workload);
            match ctx.launcher.launch(&spec, None, &credentials).await {
                Ok(status) => tracing::info!(workload = %status.id, "workload running"),
                Err(err) => {
                    tracing::warn!(workload = %task_id, %err, "workload cannot start");
                    ctx.failures
                        .lock()
                        .expect("failures")
                        .insert(task_id.clone(), err.to_string());
                }
            }
            // Report at once rather than at the next requeue: this is the moment the
            // Workload becomes Ready.
            if let Err(err) = ctx.report(&workload).await {
                tracing::warn!(%err, "status update failed");
            }
        });
        if let Some(old) = self
            .launches
            .lock()
            .expect("launches")
            .insert(id, Launch { generation, task })
        {
            // A launch for an older generation that is still pulling is obsolete.
            old.task.abort();
        }
    }

    /// Stops `id` if it runs or is being launched, reporting Killing and Stopped with `why`.
    async fn stop(&self, id: &str, why: &str) {
        let launching = self.launches.lock().expect("launches").remove(id);
        let known = launching.is_some() || self.launcher.ids().await.contains(id);
        if let Some(launch) = launching {
            launch.task.abort();
        }
        self.failures.lock().expect("failures").remove(id);
        self.reporting.lock().expect("reporting").remove(id);
        if !known {
            return;
        }
        let reports = self.launcher.reports();
        reports.send(id, None, Reason::Killing, format!("Stopping: {why}"));
        self.launcher.stop(id).await;
        reports.send(
            id,
            None,
            Reason::Stopped,
            "Stopped every component".to_owned(),
        );
    }

    async fn apply(
        &self,
        workload: &Workload,
        id: &str,
        report: serde_json::Value,
    ) -> Result<(), Error> {
        if self.applied.lock().expect("applied").get(id) == Some(&report) {
            return Ok(());
        }
        let api: Api<Workload> = Api::namespaced(
            self.client.clone(),
            workload.metadata.namespace.as_deref().unwrap_or("default"),
        );
        api.patch_status(
            &workload.name_any(),
            &PatchParams::apply(HOST_AGENT_FIELD_MANAGER).force(),
            &Patch::Apply(&report),
        )
        .await
        .map_err(|source| Error::Status {
            workload: id.to_string(),
            source,
        })?;
        self.applied
            .lock()
            .expect("applied")
            .insert(id.to_string(), report);
        Ok(())
    }
}

/// Sets the hosts the Workload's `wasi:http` interface answers to the names the operator admitted
/// for it (its configured hosts and its Kubernetes Service's DNS names; one rule in
/// `weft_api::hostnames`).
fn with_claimed_hosts(workload: &Workload) -> Workload {
    let mut workload = workload.clone();
    let namespace = workload.namespace().unwrap_or_else(|| "default".into());
    let hosts = workload.spec.http_hosts(&namespace);
    if let Some(http) = workload
        .spec
        .host_interfaces
        .iter_mut()
        .find(|i| i.namespace == "wasi" && i.package == "http")
    {
        http.config.insert("host".into(), hosts.join(","));
    }
    workload
}

/// Stops everything while the agent is fenced: at once when the fence goes up, then again
/// every 200 ms for any launch that was already under way.
async fn fence(ctx: Arc<Ctx>) {
    let mut fenced = ctx.fenced.clone();
    loop {
        if fenced.wait_for(|f| *f).await.is_err() {
            return;
        }
        let mut ids = ctx.launcher.ids().await;
        ids.extend(ctx.launches.lock().expect("launches").keys().cloned());
        if !ids.is_empty() {
            tracing::warn!(workloads = ids.len(), "fenced: stopping every Workload");
        }
        for id in ids {
            ctx.stop(&id, FENCED).await;
            // Written again in full once the fence lifts.
            ctx.applied.lock().expect("applied").remove(&id);
        }
        tokio::select! {
            _ = fenced.wait_for(|f| !*f) => {}
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Stops what no longer belongs here (deleted, or moved to another host while this agent
/// did not see it happen) and keeps the Host's workload count current.
async fn janitor(ctx: Arc<Ctx>, store: Store<Workload>, registration: Arc<Registration>) {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    let mut reported = None;
    let mut since_report = 0u32;
    loop {
        every.tick().await;
        if store.wait_until_ready().await.is_err() {
            continue;
        }
        let assigned: std::collections::HashSet<String> = store
            .state()
            .iter()
            .filter(|w| w.assignment().host() == Some(ctx.host.as_str()))
            .map(|w| id_of(w))
            .collect();
        let known: Vec<String> = {
            let launches = ctx.launches.lock().expect("launches");
            launches.keys().cloned().collect()
        };
        let mut ids = ctx.launcher.ids().await;
        ids.extend(known);
        for id in ids.difference(&assigned) {
            tracing::info!(workload = %id, "no longer assigned here; stopping");
            ctx.stop(id, "the Workload is no longer assigned to this host")
                .await;
            ctx.applied.lock().expect("applied").remove(id);
        }
        // Re-assert readiness every ~10 s (an operator may have marked the Host not Ready
        // while this agent was cut off) and whenever the count changes.
        since_report += 1;
        let count = assigned.len() as u32;
        if reported != Some(count) || since_report >= 20 {
            match registration.report(count).await {
                Ok(()) => {
                    reported = Some(count);
                    since_report = 0;
                }
                Err(err) => tracing::warn!(%err, "could not update the Host status"),
            }
        }
    }
}
