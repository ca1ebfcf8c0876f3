//! The Workload controller: finalizer, placement on a Host (the `weft.dev/host` label), moves off
//! Hosts that are no longer schedulable, the operator's part of the status, the EndpointSlice,
//! and the release of the finalizer once the Workload stopped (docs/control-plane.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use weft_api::labels::{CLEANUP_FINALIZER, HOST_LABEL, OPERATOR_FIELD_MANAGER, condition};
use weft_api::{Host, Phase, Workload};

use crate::assignments::Load;
use crate::context::Context;
use crate::endpoints;
use crate::error::{Error, chain};
use crate::metrics::WORKLOAD_CONTROLLER;
use crate::scheduler::{Candidate, Requirements, Unschedulable, find_condition, pick};
use crate::status::{OperatorStatus, Scheduling, phase, reported_stopped, scheduled_condition};
use crate::{claims, events};

/// How long a deleted Workload waits for its Host to report it stopped before the finalizer goes
/// anyway.
pub const STOP_TIMEOUT: SignedDuration = SignedDuration::from_secs(30);

/// Requeue while waiting on a Host (to schedule, start or stop the Workload): short, so moves and
/// deletions track the Hosts closely even if a watch event is missed.
const WAITING_REQUEUE: Duration = Duration::from_secs(2);
/// Requeue while deleting: the finalizer should go as soon as the Host reports.
const DELETING_REQUEUE: Duration = Duration::from_secs(1);
/// Requeue of a settled Workload: a safety net, watches do the real work.
const SETTLED_REQUEUE: Duration = Duration::from_secs(60);
/// Requeue after an error.
const ERROR_REQUEUE: Duration = Duration::from_secs(2);

/// Reconciles one Workload. (kube's own span covers only making the future, so each reconcile
/// is its own span here.)
#[tracing::instrument(name = "reconcile Workload", skip_all, fields(namespace = workload.namespace(), name = workload.name_any()))]
pub async fn reconcile(workload: Arc<Workload>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciled(WORKLOAD_CONTROLLER);
    ctx.caches_ready().await?;
    let namespace = workload.namespace().ok_or(Error::MissingField {
        kind: "Workload",
        field: "metadata.namespace",
    })?;
    let api: Api<Workload> = Api::namespaced(ctx.client.clone(), &namespace);

    if workload.meta().deletion_timestamp.is_some() {
        return finalize(&workload, &api, &ctx).await;
    }
    let workload = ensure_finalizer(&workload, &api).await?;
    let claims = {
        let hosts = workload.spec.http_hosts(&namespace);
        let rivals: Vec<Arc<Workload>> = (ctx.caches.claims.claimants(&hosts).iter())
            .filter_map(|key| ctx.caches.workloads.get(key))
            .collect();
        claims::check(
            &workload,
            rivals.iter().map(Arc::as_ref),
            &ctx.hostname_grants,
            &|w, host| ctx.claimed_since(w, host),
        )
    };
    let (workload, scheduling) = match claims {
        Ok(()) => place(workload, &namespace, &api, &ctx).await?,
        Err(refusal) => refuse(workload, refusal, &api, &ctx).await?,
    };
    let status = desired_status(&workload, &scheduling, false, Timestamp::now());
    apply_status(&workload, &status, &api).await?;

    // A replica's slices are its WorkloadDeployment's, written by that controller.
    if workload.deployment_owner().is_none() {
        let ready_host = match (&status.phase, &status.host) {
            (Phase::Running, Some(host)) => ctx.caches.hosts.get(&ObjectRef::new(host)),
            _ => None,
        };
        endpoints::reconcile(&workload, ready_host.as_deref(), &ctx).await?;
    }

    Ok(match status.phase {
        Phase::Running | Phase::Failed => Action::requeue(SETTLED_REQUEUE),
        _ => Action::requeue(WAITING_REQUEUE),
    })
}

/// Logs a failed reconciliation and retries soon.
pub fn error_policy(workload: Arc<Workload>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(WORKLOAD_CONTROLLER);
    tracing::warn!(
        workload = %workload.name_any(),
        namespace = %workload.namespace().unwrap_or_default(),
        error = %chain(error),
        "reconciling a Workload failed"
    );
    Action::requeue(ERROR_REQUEUE)
}

fn describe(workload: &Workload) -> String {
    format!(
        "Workload {}/{}",
        workload.namespace().unwrap_or_default(),
        workload.name_any()
    )
}

/// Adds the cleanup finalizer before anything is scheduled, so no Workload runs without it.
async fn ensure_finalizer(workload: &Workload, api: &Api<Workload>) -> Result<Workload, Error> {
    let finalizers = workload.finalizers();
    if finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
        return Ok(workload.clone());
    }
    let mut finalizers = finalizers.to_vec();
    finalizers.push(CLEANUP_FINALIZER.to_owned());
    patch_finalizers(api, workload, &finalizers)
        .await
        .map_err(Error::kube(format!(
            "adding the finalizer to {}",
            describe(workload)
        )))
}

/// Why `host` cannot keep Workloads according to the caches, if it cannot.
fn cached_health(ctx: &Context, host: &str) -> Option<String> {
    match ctx.caches.hosts.get(&ObjectRef::new(host)) {
        None => Some("is gone".to_owned()),
        Some(cached) => Candidate::new(&cached, ctx.host_lease_state(host), Load::default())
            .health_refusal()
            .map(|refusal| refusal.to_string()),
    }
}

/// The same as [`cached_health`], read from the API server: a move is costly, so the caches'
/// verdict is confirmed first (they may lag a Host's recovery).
async fn fresh_health(ctx: &Context, host: &str) -> Result<Option<String>, Error> {
    let hosts: Api<Host> = Api::all(ctx.client.clone());
    let Some(fresh) = hosts
        .get_opt(host)
        .await
        .map_err(Error::kube(format!("reading Host {host}")))?
    else {
        return Ok(Some("is gone".to_owned()));
    };
    let lease = ctx.fresh_host_lease_state(host).await?;
    Ok(Candidate::new(&fresh, lease, Load::default())
        .health_refusal()
        .map(|refusal| refusal.to_string()))
}

/// Keeps the Workload on a healthy Host, or picks one (setting the label), or finds none.
async fn place(
    workload: Workload,
    namespace: &str,
    api: &Api<Workload>,
    ctx: &Context,
) -> Result<(Workload, Scheduling), Error> {
    let name = workload.name_any();
    // Only a label the operator also recorded in status is an assignment: a label a tenant set
    // is ignored, and replaced below.
    let labelled = workload.labels().get(HOST_LABEL).cloned();
    let assigned = workload.assignment().host().map(str::to_owned);
    let now = Timestamp::now();
    if let Some(host) = &assigned
        && cached_health(ctx, host).is_none()
    {
        return Ok((workload, Scheduling::Assigned(host.clone())));
    }

    // One placement at a time, so each sees the others' assignments in the load.
    let mut assignments = ctx.assignments.lock().await;
    let leaving = match &assigned {
        Some(host) => match fresh_health(ctx, host).await? {
            None => return Ok((workload, Scheduling::Assigned(host.clone()))),
            Some(why) => Some((host.clone(), why)),
        },
        None => None,
    };

    let requirements =
        Requirements::from_spec(&workload.spec).map_err(|source| Error::InvalidHostInterface {
            workload: format!("{namespace}/{name}"),
            source,
        })?;
    let cached_workloads = ctx.caches.workloads.state();
    let load = assignments.load(
        cached_workloads.iter().map(Arc::as_ref),
        workload.deployment_owner().map(|o| o.uid.as_str()),
        Instant::now(),
    );
    let candidates = ctx.candidates(&load);
    let chosen = pick(&requirements, &candidates);
    let new_host = chosen.as_ref().ok().cloned();
    let since = waiting_since(
        &workload,
        leaving.as_ref().map(|(host, _)| host.as_str()),
        ctx,
        now,
    );

    let patched = if new_host != labelled {
        let patched = set_host_label(api, &workload, new_host.as_deref()).await?;
        assignments.record(
            namespace,
            &name,
            patched.resource_version(),
            new_host.clone(),
            Instant::now(),
        );
        patched
    } else {
        workload.clone()
    };
    drop(assignments);

    match chosen {
        Ok(host) => {
            ctx.metrics
                .scheduled_after(now.duration_since(since).as_secs_f64());
            match &leaving {
                Some((old, why)) => {
                    tracing::info!(workload = %name, namespace, from = %old, to = %host, "moving Workload: its Host {why}");
                    events::publish(
                        &ctx.client,
                        &ctx.reporter,
                        &patched,
                        EventType::Normal,
                        events::MOVED,
                        "Scheduling",
                        format!("Moved from {old} to {host}: {old} {why}"),
                    )
                    .await;
                }
                None => {
                    tracing::info!(workload = %name, namespace, host = %host, "scheduled Workload");
                    events::publish(
                        &ctx.client,
                        &ctx.reporter,
                        &patched,
                        EventType::Normal,
                        events::SCHEDULED,
                        "Scheduling",
                        format!("Assigned to {host}"),
                    )
                    .await;
                }
            }
            Ok((patched, Scheduling::Assigned(host)))
        }
        Err(Unschedulable { message }) => {
            if let Some((old, why)) = &leaving {
                events::publish(
                    &ctx.client,
                    &ctx.reporter,
                    &patched,
                    EventType::Warning,
                    events::MOVED,
                    "Scheduling",
                    format!("Removed from {old}: {old} {why}; no other Host fits"),
                )
                .await;
            }
            if unschedulable_message_changed(&workload, &message) {
                tracing::info!(workload = %name, namespace, "cannot schedule Workload: {message}");
                events::publish(
                    &ctx.client,
                    &ctx.reporter,
                    &patched,
                    EventType::Warning,
                    events::FAILED_SCHEDULING,
                    "Scheduling",
                    message.clone(),
                )
                .await;
            }
            Ok((patched, Scheduling::Unschedulable(message)))
        }
    }
}

/// Keeps a Workload whose host name claims are refused off every Host (taking it off the one it
/// runs on, if an older claimant appeared since) and says why, once per distinct reason.
async fn refuse(
    workload: Workload,
    refusal: claims::Refusal,
    api: &Api<Workload>,
    ctx: &Context,
) -> Result<(Workload, Scheduling), Error> {
    let message = refusal.to_string();
    let workload = match workload.labels().get(HOST_LABEL) {
        Some(host) => {
            tracing::info!(workload = %workload.name_any(), host = %host, "taking Workload off its Host: {message}");
            let mut assignments = ctx.assignments.lock().await;
            let patched = set_host_label(api, &workload, None).await?;
            assignments.record(
                &workload.namespace().unwrap_or_default(),
                &workload.name_any(),
                patched.resource_version(),
                None,
                Instant::now(),
            );
            patched
        }
        None => workload,
    };
    if unschedulable_message_changed(&workload, &message) {
        events::publish(
            &ctx.client,
            &ctx.reporter,
            &workload,
            EventType::Warning,
            events::FAILED_SCHEDULING,
            "Scheduling",
            message.clone(),
        )
        .await;
    }
    let reason = refusal.reason();
    Ok((workload, Scheduling::Refused { reason, message }))
}

/// Whether `message` differs from the `Scheduled=False` message already in the status (so
/// FailedScheduling is emitted once per distinct reason, not every requeue).
fn unschedulable_message_changed(workload: &Workload, message: &str) -> bool {
    let current = workload
        .status
        .as_ref()
        .and_then(|status| find_condition(&status.conditions, condition::SCHEDULED));
    !current.is_some_and(|c| c.status == "False" && c.message == message)
}

/// Since when the Workload has been waiting for a Host, for the scheduling-duration metric: since
/// its old Host failed (lease expiry or Ready transition), since it became unschedulable, or since
/// its creation.
fn waiting_since(
    workload: &Workload,
    leaving: Option<&str>,
    ctx: &Context,
    now: Timestamp,
) -> Timestamp {
    if let Some(host) = leaving {
        let lease_expiry = ctx
            .host_lease(host)
            .and_then(|lease| ctx.lease_clock.expired_at(&lease));
        let ready_change = ctx.caches.hosts.get(&ObjectRef::new(host)).and_then(|h| {
            h.status.as_ref().and_then(|s| {
                find_condition(&s.conditions, condition::READY)
                    .filter(|c| c.status != "True")
                    .map(|c| c.last_transition_time.0)
            })
        });
        return [lease_expiry, ready_change]
            .into_iter()
            .flatten()
            .filter(|t| *t <= now)
            .min()
            .unwrap_or(now);
    }
    let unschedulable_since = workload
        .status
        .as_ref()
        .and_then(|status| find_condition(&status.conditions, condition::SCHEDULED))
        .filter(|c| c.status == "False")
        .map(|c| c.last_transition_time.0);
    unschedulable_since
        .or_else(|| workload.meta().creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now)
}

/// Sets (or removes) the host label. The `resourceVersion` makes it conditional: if the Workload
/// changed since it was read, the patch fails and the next reconciliation decides again.
async fn set_host_label(
    api: &Api<Workload>,
    workload: &Workload,
    host: Option<&str>,
) -> Result<Workload, Error> {
    let patch = json!({
        "metadata": {
            "resourceVersion": workload.resource_version(),
            "labels": { HOST_LABEL: host },
        }
    });
    let params = PatchParams {
        field_manager: Some(OPERATOR_FIELD_MANAGER.to_owned()),
        ..Default::default()
    };
    api.patch(&workload.name_any(), &params, &Patch::Merge(&patch))
        .await
        .map_err(Error::kube(match host {
            Some(host) => format!("labelling {} with Host {host}", describe(workload)),
            None => format!("removing the host label of {}", describe(workload)),
        }))
}

/// The operator's status fields for `workload` given where it is scheduled.
fn desired_status(
    workload: &Workload,
    scheduling: &Scheduling,
    deleting: bool,
    now: Timestamp,
) -> OperatorStatus {
    let current = workload.status.as_ref();
    let previous =
        current.and_then(|status| find_condition(&status.conditions, condition::SCHEDULED));
    let previous_host = current.and_then(|status| status.host.as_deref());
    let generation = workload.meta().generation;
    let scheduled = scheduled_condition(previous, previous_host, scheduling, generation, now);
    let hosts = workload
        .spec
        .http_hosts(&workload.namespace().unwrap_or_default());
    OperatorStatus {
        phase: phase(deleting, &scheduled, current),
        host: scheduling.host().map(str::to_owned),
        observed_generation: generation,
        scheduled,
        hostnames: claims::record(workload, &hosts, now),
    }
}

/// Applies the operator's status fields when they differ from what is stored.
async fn apply_status(
    workload: &Workload,
    status: &OperatorStatus,
    api: &Api<Workload>,
) -> Result<(), Error> {
    if status.is_current(workload.status.as_ref()) {
        return Ok(());
    }
    api.patch_status(
        &workload.name_any(),
        &PatchParams::apply(OPERATOR_FIELD_MANAGER).force(),
        &Patch::Apply(status.apply_body()),
    )
    .await
    .map_err(Error::kube(format!(
        "applying the status of {}",
        describe(workload)
    )))?;
    Ok(())
}

/// A Workload being deleted: phase Terminating, then the finalizer goes once its Host reported it
/// stopped, or at once if no live Host will report, or after [`STOP_TIMEOUT`].
async fn finalize(
    workload: &Workload,
    api: &Api<Workload>,
    ctx: &Context,
) -> Result<Action, Error> {
    let Some(index) = workload
        .finalizers()
        .iter()
        .position(|f| f == CLEANUP_FINALIZER)
    else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    let host = workload.labels().get(HOST_LABEL).cloned();
    let scheduling = match &host {
        Some(host) => Scheduling::Assigned(host.clone()),
        None => Scheduling::Unschedulable(
            workload
                .status
                .as_ref()
                .and_then(|s| find_condition(&s.conditions, condition::SCHEDULED))
                .map(|c| c.message.clone())
                .unwrap_or_else(|| "deleted before it was scheduled".to_owned()),
        ),
    };
    let status = desired_status(workload, &scheduling, true, now);
    apply_status(workload, &status, api).await?;
    if workload.deployment_owner().is_none() {
        endpoints::reconcile(workload, None, ctx).await?;
    }

    let waited = workload
        .meta()
        .deletion_timestamp
        .as_ref()
        .map_or(SignedDuration::ZERO, |t| now.duration_since(t.0));
    let release = if reported_stopped(workload.status.as_ref()) {
        Some("its Host stopped it".to_owned())
    } else if let Some(host) = &host {
        match cached_health(ctx, host) {
            Some(why) => Some(format!("its Host {host} {why}")),
            None if waited >= STOP_TIMEOUT => Some(format!(
                "its Host {host} did not report it stopped within {}s",
                STOP_TIMEOUT.as_secs()
            )),
            None => None,
        }
    } else {
        Some("it was not scheduled".to_owned())
    };
    let Some(why) = release else {
        let left = (STOP_TIMEOUT - waited).unsigned_abs();
        return Ok(Action::requeue(
            left.clamp(Duration::from_millis(100), DELETING_REQUEUE),
        ));
    };

    let mut finalizers = workload.finalizers().to_vec();
    finalizers.remove(index);
    patch_finalizers(api, workload, &finalizers)
        .await
        .map_err(Error::kube(format!(
            "removing the finalizer of {}",
            describe(workload)
        )))?;
    tracing::info!(workload = %workload.name_any(), namespace = %workload.namespace().unwrap_or_default(), "released deleted Workload: {why}");
    events::publish(
        &ctx.client,
        &ctx.reporter,
        workload,
        EventType::Normal,
        events::STOPPED,
        "Deleting",
        format!("Released: {why}"),
    )
    .await;
    Ok(Action::await_change())
}

/// Replaces the finalizers, on condition that the Workload is unchanged since it was read (the
/// `resourceVersion`), so a finalizer someone else adds or removes concurrently is not lost.
pub(crate) async fn patch_finalizers(
    api: &Api<Workload>,
    workload: &Workload,
    finalizers: &[String],
) -> Result<Workload, kube::Error> {
    let patch = json!({
        "metadata": {
            "resourceVersion": workload.resource_version(),
            "finalizers": finalizers,
        }
    });
    api.patch(
        &workload.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
}
