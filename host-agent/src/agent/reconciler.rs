//! Runs the Workloads labelled with this host's name: a kube-runtime controller over exactly
//! those, starting (pull + start) each new generation in its own task, reporting status with
//! this agent's field manager, and stopping whatever leaves the watch. Everything the agent
//! keeps about one Workload is one [`Entry`]: its state ([`workload_state`], the one place a
//! state changes) and its start task. [`Ctx::report`] is its one status writer, called only by
//! the Workload's reconciliation (which kube never runs twice at once for one object): a start
//! ending or a service restarting asks for a reconciliation instead.
//!
//! While the agent is fenced (its Lease may have run out, see `lease.rs`) it runs nothing; when
//! the fence lifts, every Workload still assigned here is reconciled again. The watch may then
//! be stale (it was cut off too), so every launch first confirms its assignment with a read
//! from the API server: a Workload the operator moved meanwhile never starts here again.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::watch;
use weft_api::assignment::Assignment;
use weft_api::labels::{HOST_AGENT_FIELD_MANAGER, HOST_LABEL, condition};
use weft_api::{Workload, error_chain};

use super::host_object::Registration;
use super::workload_state::{self, Effect, Event, FENCED, Seen, State, Target};
use super::{pull_secrets, status};
use crate::launcher::{Launcher, id_of};
use crate::lifecycle::Reason;
use crate::sources::{self, cluster::ClusterReader};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status of {workload}: {source}")]
    Status {
        workload: String,
        source: kube::Error,
    },
}

/// Why a launch did not start: its assignment could not be confirmed.
#[derive(Debug, thiserror::Error)]
enum Unconfirmed {
    #[error("reading the Workload: {0}")]
    Read(#[from] kube::Error),
    #[error("the API server says it is no longer assigned to this host for this generation")]
    Moved,
}

/// How long a launch runs before its progress (pulling, compiling) is written to the status.
const LAUNCH_PROGRESS: Duration = Duration::from_secs(1);

/// How long a launch whose assignment could not be read waits before asking again.
const CONFIRM_RETRY: Duration = Duration::from_secs(1);

/// Everything this agent keeps about one Workload.
#[derive(Default)]
struct Entry {
    state: State,
    /// The task starting the state's target, until it ends or is called off.
    start: Option<tokio::task::JoinHandle<()>>,
    /// The status last applied, so unchanged status is not written again.
    applied: Option<status::Report>,
}

struct Ctx {
    client: kube::Client,
    host: String,
    launcher: Arc<Launcher>,
    /// By `namespace/name`.
    entries: Mutex<HashMap<String, Entry>>,
    /// True while this host's Lease may have run out.
    fenced: watch::Receiver<bool>,
    /// Asks for a Workload's reconciliation (when its status changes without the object).
    wake: futures::channel::mpsc::UnboundedSender<ObjectRef<Workload>>,
    /// How often the ConfigMaps and Secrets a Workload takes values from are read again.
    sources_resync: Duration,
}

pub struct Reconciler {
    store: Store<Workload>,
    host: String,
    done: tokio::task::JoinHandle<()>,
    /// The tasks beside the controller (events, janitor, fence), stopped with it.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    ctx: Arc<Ctx>,
}

impl Reconciler {
    /// Workloads still assigned to this host.
    pub fn assigned(&self) -> usize {
        self.store
            .state()
            .iter()
            .filter(|w| w.assignment().host() == Some(self.host.as_str()))
            .count()
    }

    /// The Workloads labelled with this host, as its watch sees them.
    pub fn store(&self) -> Store<Workload> {
        self.store.clone()
    }

    /// Waits for the controller to finish (after `stop`), then stops every task the
    /// reconciler started: its helpers and the starts still under way.
    pub async fn finished(self) {
        let _ = self.done.await;
        for task in self.tasks {
            task.abort();
        }
        for entry in self.ctx.entries.lock().values_mut() {
            if let Some(start) = entry.start.take() {
                start.abort();
            }
        }
    }
}

pub fn start(
    client: kube::Client,
    host: String,
    launcher: Arc<Launcher>,
    registration: Arc<Registration>,
    fenced: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    sources_resync: Duration,
) -> Reconciler {
    let api: Api<Workload> = Api::all(client.clone());
    let selector = format!("{HOST_LABEL}={host}");
    let controller = Controller::new(api, watcher::Config::default().labels(&selector));
    let store = controller.store();
    let (wake, woken) = futures::channel::mpsc::unbounded();
    let ctx = Arc::new(Ctx {
        client,
        host: host.clone(),
        launcher,
        entries: Mutex::default(),
        fenced: fenced.clone(),
        wake,
        sources_resync,
    });

    // Service restarts and give-ups change status without any change to the object.
    let mut events = ctx.launcher.host_events();
    let event_ctx = ctx.clone();
    let woken_by_events = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let Some((ns, name)) = event.workload.split_once('/') {
                event_ctx.wake(ObjectRef::new(name).within(ns));
            }
        }
    });
    let tasks = vec![
        woken_by_events,
        tokio::spawn(janitor(ctx.clone(), store.clone(), registration)),
        tokio::spawn(fence(ctx.clone())),
    ];
    // When the fence lifts, everything still assigned here is started again.
    let unfenced = futures::stream::unfold(fenced, |mut fenced| async move {
        fenced.wait_for(|f| *f).await.ok()?;
        fenced.wait_for(|f| !*f).await.ok()?;
        Some(((), fenced))
    });

    let mut shutdown = stop.clone();
    let controller_ctx = ctx.clone();
    let done = tokio::spawn(async move {
        controller
            .reconcile_all_on(unfenced)
            .reconcile_on(woken)
            .graceful_shutdown_on(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            })
            .run(reconcile, error_policy, controller_ctx)
            .for_each(|_| async {})
            .await;
    });
    let _ = stop.borrow_and_update();
    Reconciler {
        store,
        host,
        done,
        tasks,
        ctx,
    }
}

#[tracing::instrument(name = "reconcile Workload", skip_all, fields(namespace = workload.namespace(), name = workload.name_any()))]
async fn reconcile(workload: Arc<Workload>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let id = id_of(&workload);
    // Recorded as assigned here (label and status): only then did this host start it, and only
    // then may it write the status (the chart's admission policy holds it to the same rule).
    let mine = workload.assignment().host() == Some(ctx.host.as_str());
    let deleting = workload.metadata.deletion_timestamp.is_some();
    let (seen, resolved) = ctx.see(&workload, deleting).await;
    let effect = ctx.step(&id, Event::Reconciled(seen.clone()));
    match &effect {
        Effect::Stop(why) => ctx.stop(&id, why).await,
        Effect::Start(target) => {
            let resolved = resolved.expect("a wanted Workload comes resolved");
            ctx.start(resolved, id.clone(), *target);
        }
        Effect::Nothing => {}
    }
    match seen {
        Seen::Fenced => return Ok(Action::await_change()),
        Seen::Gone(_) => {
            if mine && deleting {
                // Stopped: tells the operator it may release the finalizer. A Workload deleted
                // before its assignment was recorded never started here; the operator releases
                // it without a report.
                ctx.report(&workload).await?;
            }
            return Ok(Action::await_change());
        }
        Seen::Unreadable(_, err) => {
            tracing::warn!(workload = %id, %err, "its ConfigMaps or Secrets cannot be read");
        }
        Seen::Waiting | Seen::Wanted(_) => {}
    }

    let says_ready = (workload.status.as_ref())
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == condition::READY));
    if matches!(effect, Effect::Start(_)) && !says_ready {
        // A first start: the launch wakes this reconciliation when it ends, which reports it,
        // so a start from cached code costs one status write instead of two (a slower one is
        // reported in progress). A Workload whose status still says Ready from before (another
        // host, an older generation) is reported at once, so that no longer stands.
        return Ok(Action::requeue(LAUNCH_PROGRESS));
    }
    ctx.report(&workload).await?;
    // The values of ConfigMaps and Secrets are read, not watched (the agent may read those a
    // Workload names, and no others): a Workload that takes some is read again every
    // --sources-resync. Nothing else is polled: what changes its status wakes it.
    Ok(if workload.spec.config_sources().is_empty() {
        Action::await_change()
    } else {
        Action::requeue(ctx.sources_resync)
    })
}

fn error_policy(workload: Arc<Workload>, err: &Error, _: Arc<Ctx>) -> Action {
    tracing::warn!(workload = %id_of(&workload), %err, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

impl Ctx {
    /// What a reconciliation of `workload` sees; a Workload wanted here comes with its values
    /// written in. Only what the operator assigned (and recorded) counts, never a label a
    /// tenant set. A new spec runs once the operator has recorded the assignment for it; until
    /// then the current one keeps running. A change of a ConfigMap or Secret it uses is a new
    /// target too (a live update), seen at the latest at the next resync.
    async fn see(&self, workload: &Arc<Workload>, deleting: bool) -> (Seen, Option<Arc<Workload>>) {
        let assignment = workload.assignment();
        if *self.fenced.borrow() {
            return (Seen::Fenced, None);
        }
        if deleting {
            return (Seen::Gone("the Workload is being deleted"), None);
        }
        if assignment.host() != Some(self.host.as_str()) {
            return (
                Seen::Gone("the Workload is no longer assigned to this host"),
                None,
            );
        }
        if !matches!(assignment, Assignment::Current(_)) {
            return (Seen::Waiting, None);
        }
        let generation = workload.metadata.generation;
        let reader = ClusterReader(self.client.clone());
        match sources::resolve(workload.clone(), &reader).await {
            Ok(resolved) => {
                let target = Target {
                    generation,
                    sources: Some(resolved.fingerprint),
                };
                (Seen::Wanted(target), Some(resolved.workload))
            }
            Err(err) => (Seen::Unreadable(generation, err.to_string()), None),
        }
    }

    /// Moves `id`'s state by `event`; returns what to do about it.
    fn step(&self, id: &str, event: Event) -> Effect {
        self.entry(id, |e| {
            let (state, effect) = workload_state::step(&e.state, event);
            e.state = state;
            effect
        })
    }

    /// Asks for `workload`'s reconciliation.
    fn wake(&self, workload: ObjectRef<Workload>) {
        // The receiver is gone only once the controller stopped.
        let _ = self.wake.unbounded_send(workload);
    }

    /// The one status writer: writes what the host knows of `workload` now, unless that is what
    /// it wrote last. Only the Workload's reconciliation calls it, so two reports of one Workload
    /// never race (a stale one landing last would stay, being what was "last written").
    async fn report(&self, workload: &Workload) -> Result<(), Error> {
        let id = id_of(workload);
        let observed = self.launcher.status(&id).await;
        let (state, previous) = self.entry(&id, |e| (e.state.clone(), e.applied.clone()));
        let report =
            status::Report::new(workload, state.known(observed.as_ref()), previous.as_ref());
        if previous.as_ref() == Some(&report) {
            return Ok(());
        }
        let api: Api<Workload> = Api::namespaced(
            self.client.clone(),
            workload.metadata.namespace.as_deref().unwrap_or("default"),
        );
        api.patch_status(
            &workload.name_any(),
            &PatchParams::apply(HOST_AGENT_FIELD_MANAGER).force(),
            &Patch::Apply(&report.patch(workload)),
        )
        .await
        .map_err(|source| Error::Status {
            workload: id.clone(),
            source,
        })?;
        self.entry(&id, |e| e.applied = Some(report));
        Ok(())
    }

    /// Runs `f` on the entry of `id`, creating it if there is none.
    fn entry<T>(&self, id: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        f(self.entries.lock().entry(id.to_owned()).or_default())
    }

    /// Every workload this agent keeps anything about, or runs.
    async fn known_ids(&self) -> std::collections::HashSet<String> {
        let mut ids = self.launcher.ids().await;
        ids.extend(self.entries.lock().keys().cloned());
        ids
    }

    /// Starts `target` of `workload` in a task of its own, calling off a start under way; the
    /// task feeds its outcome to the state and wakes the Workload's reconciliation.
    fn start(self: &Arc<Self>, workload: Arc<Workload>, id: String, target: Target) {
        let ctx = self.clone();
        let task_id = id.clone();
        let task = tokio::spawn(async move {
            let outcome = match ctx.confirm(&workload).await {
                Err(why) => {
                    tracing::info!(workload = %task_id, %why, "not started");
                    ctx.step(&task_id, Event::Unconfirmed(target));
                    // Asked again at once when the watch shows the move; after a pause when
                    // the API server could not answer.
                    let Unconfirmed::Read(_) = why else { return };
                    tokio::time::sleep(CONFIRM_RETRY).await;
                    ctx.wake(ObjectRef::from_obj(workload.as_ref()));
                    return;
                }
                Ok(()) => {
                    let credentials = pull_secrets::credentials(&ctx.client, &workload).await;
                    let spec = with_claimed_hosts(&workload);
                    match ctx.launcher.launch(&spec, None, &credentials).await {
                        Ok(status) => {
                            tracing::info!(workload = %status.id, "workload running");
                            Event::Started(target)
                        }
                        Err(err) => {
                            let err = error_chain(&err);
                            tracing::warn!(workload = %task_id, %err, "workload cannot start");
                            Event::StartFailed(target, err)
                        }
                    }
                }
            };
            ctx.step(&task_id, outcome);
            // This is the moment the Workload becomes Ready (or Failed): its reconciliation
            // reports it.
            ctx.wake(ObjectRef::from_obj(workload.as_ref()));
        });
        if let Some(old) = self.entry(&id, |e| e.start.replace(task)) {
            // A start of an older generation that is still pulling is obsolete.
            old.abort();
        }
    }

    /// Reads `workload` from the API server (not the watch, which may lag or have been cut
    /// off) and checks it is still assigned here for the generation being launched.
    async fn confirm(&self, workload: &Workload) -> Result<(), Unconfirmed> {
        let api: Api<Workload> = Api::namespaced(
            self.client.clone(),
            workload.metadata.namespace.as_deref().unwrap_or("default"),
        );
        // The status subresource returns the whole object; its `get` is what the agent's RBAC
        // allows (it lists and watches Workloads, but reads single ones only there).
        let live = api.get_status(&workload.name_any()).await?;
        if live.assignment() == Assignment::Current(&self.host)
            && live.metadata.generation == workload.metadata.generation
        {
            Ok(())
        } else {
            Err(Unconfirmed::Moved)
        }
    }

    /// Stops `id` if it runs or is being started, reporting Killing and Stopped with `why`.
    /// What was last written is kept, so a last report keeps its transition time.
    async fn stop(&self, id: &str, why: &str) {
        let start = self.entries.lock().get_mut(id).and_then(|e| e.start.take());
        let known = start.is_some() || self.launcher.ids().await.contains(id);
        if let Some(start) = start {
            start.abort();
        }
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

    /// Stops `id` and drops everything kept about it (its state is `Idle` again): if it comes
    /// back, its status is written again in full.
    async fn forget(&self, id: &str, why: &str) {
        self.stop(id, why).await;
        self.entries.lock().remove(id);
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
        let ids = ctx.known_ids().await;
        if !ids.is_empty() {
            tracing::warn!(workloads = ids.len(), "fenced: stopping every Workload");
        }
        for id in ids {
            ctx.forget(&id, FENCED).await;
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
        if weft_daemon::cache::ready(&store).await.is_err() {
            continue;
        }
        let assigned: std::collections::HashSet<String> = store
            .state()
            .iter()
            .filter(|w| w.assignment().host() == Some(ctx.host.as_str()))
            .map(|w| id_of(w))
            .collect();
        for id in ctx.known_ids().await.difference(&assigned) {
            ctx.forget(id, "the Workload is no longer assigned to this host")
                .await;
        }
        // A fenced host runs nothing and does not claim to be Ready; it does again at once
        // when its Lease is renewed.
        if *ctx.fenced.borrow() {
            reported = None;
            registration.forget_applied();
            continue;
        }
        // Re-assert readiness at once after a fence and every ~10 s (an operator may have
        // marked the Host not Ready while this agent was cut off); a changed count at most
        // every 2 s: while hundreds of Workloads start, each write is a Host event.
        since_report += 1;
        let count = assigned.len() as u32;
        let due = match reported {
            None => true,
            Some(last) => (last != count && since_report >= 4) || since_report >= 20,
        };
        if due {
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
