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
use weft_api::{Phase, Workload};

use crate::context::Context;
use crate::endpoints;
use crate::error::{Error, chain};
use crate::metrics::WORKLOAD_CONTROLLER;
use crate::scheduler::{Requirements, Unschedulable, find_condition, pick};
use crate::status::{OperatorStatus, Scheduling, phase, reported_stopped, scheduled_condition};
use crate::{claims, events, host_health};

/// How long a deleted Workload waits for its Host to report it stopped before the finalizer goes
/// anyway.
pub const STOP_TIMEOUT: SignedDuration = SignedDuration::from_secs(30);

/// Requeue while deleting: the finalizer should go as soon as the Host reports.
const DELETING_REQUEUE: Duration = Duration::from_secs(1);
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
    let claims = {
        let hosts = workload.spec.http_hosts(&namespace);
        let claimant = workload.claimant();
        let rivals: Vec<Arc<Workload>> = (ctx.caches.claims.read(|c| c.rivals(&hosts, &claimant)))
            .iter()
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
        Ok(()) => place(workload.as_ref().clone(), &namespace, &api, &ctx).await?,
        Err(refusal) => refuse(workload.as_ref().clone(), refusal, &api, &ctx).await?,
    };
    // A label patch brought the finalizer along; a Workload left unlabelled gets it now.
    let workload = ensure_finalizer(&workload, &api).await?;
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

    // No polling: what it waits for reaches it as a change of itself (its Host reporting),
    // of its Host, or of a rival for its host names (see `controllers.rs`).
    Ok(Action::await_change())
}

/// Logs a failed reconciliation and retries soon; one that read a stale Workload waits for
/// the newer version instead (its watch event is on its way, or already queued).
pub fn error_policy(workload: Arc<Workload>, error: &Error, ctx: Arc<Context>) -> Action {
    if error.is_conflict() {
        tracing::debug!(workload = %workload.name_any(), error = %chain(error), "stale read; waiting for the newer version");
        return Action::await_change();
    }
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

/// The finalizers `workload` should have, if it lacks the cleanup finalizer.
fn missing_finalizer(workload: &Workload) -> Option<Vec<String>> {
    let finalizers = workload.finalizers();
    if finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
        return None;
    }
    let mut finalizers = finalizers.to_vec();
    finalizers.push(CLEANUP_FINALIZER.to_owned());
    Some(finalizers)
}

/// Adds the cleanup finalizer if the Workload lacks it.
async fn ensure_finalizer(workload: &Workload, api: &Api<Workload>) -> Result<Workload, Error> {
    let Some(finalizers) = missing_finalizer(workload) else {
        return Ok(workload.clone());
    };
    patch_finalizers(api, workload, &finalizers)
        .await
        .map_err(Error::kube(format!(
            "adding the finalizer to {}",
            describe(workload)
        )))
}

/// Keeps the Workload on a healthy Host, or picks one (setting the label), or finds none.
async fn place(
    workload: Workload,
    namespace: &str,
    api: &Api<Workload>,
    ctx: &Context,
) -> Result<(Workload, Scheduling), Error> {
    let name = workload.name_any();
    let key = ObjectRef::from_obj(&workload);
    // Only a label the operator also recorded in status is an assignment: a label a tenant set
    // is ignored, and replaced below.
    let labelled = workload.labels().get(HOST_LABEL).cloned();
    let assigned = workload.assignment().host().map(str::to_owned);
    let now = Timestamp::now();
    if let Some(host) = &assigned
        && host_health::cached(ctx, host).is_none()
    {
        return Ok((workload, Scheduling::Assigned(host.clone())));
    }

    let leaving = match &assigned {
        Some(host) => match host_health::fresh(ctx, host).await? {
            None => return Ok((workload, Scheduling::Assigned(host.clone()))),
            Some(why) => Some((host.clone(), why)),
        },
        None => None,
    };

    // One choice at a time, so each sees the others' assignments in the load; the label is
    // then written outside the lock, the assignment recorded meanwhile.
    let mut assignments = ctx.assignments.lock().await;
    let requirements =
        Requirements::from_spec(&workload.spec).map_err(|source| Error::InvalidHostInterface {
            workload: format!("{namespace}/{name}"),
            source,
        })?;
    let load = ctx.caches.placements.read(|placements| {
        assignments.load(
            placements,
            &key,
            workload.deployment_owner().map(|o| o.uid.as_str()),
            Instant::now(),
        )
    });
    let candidates = ctx.candidates(&load);
    let chosen = pick(&requirements, &candidates);
    let new_host = chosen.as_ref().ok().cloned();
    let since = waiting_since(
        &workload,
        leaving.as_ref().map(|(host, _)| host.as_str()),
        ctx,
        now,
    );

    let relabel = new_host != labelled;
    if relabel {
        assignments.record(&key, None, new_host.clone(), Instant::now());
    }
    drop(assignments);
    let patched = if relabel {
        let patched = set_host_label(api, &workload, new_host.as_deref()).await;
        let mut assignments = ctx.assignments.lock().await;
        match patched {
            Ok(patched) => {
                assignments.patched(&key, patched.resource_version());
                patched
            }
            Err(error) => {
                assignments.forget(&key);
                return Err(error);
            }
        }
    } else {
        workload.clone()
    };

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
                &ObjectRef::from_obj(&workload),
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

/// Sets (or removes) the host label, adding the cleanup finalizer in the same patch if it is
/// missing: no Workload is placed without it, and a new Workload costs one patch, not two. The
/// `resourceVersion` makes it conditional: if the Workload changed since it was read, the patch
/// fails and the next reconciliation decides again.
async fn set_host_label(
    api: &Api<Workload>,
    workload: &Workload,
    host: Option<&str>,
) -> Result<Workload, Error> {
    let mut patch = json!({
        "metadata": {
            "resourceVersion": workload.resource_version(),
            "labels": { HOST_LABEL: host },
        }
    });
    if let Some(finalizers) = missing_finalizer(workload) {
        patch["metadata"]["finalizers"] = json!(finalizers);
    }
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

/// Applies the operator's status fields when they differ from what is stored, on condition
/// that the Workload is the version they were computed from: from a stale cache (which may not
/// show the status this operator just wrote), a condition's transition time would be stamped
/// again, later than the Host's report that followed it.
async fn apply_status(
    workload: &Workload,
    status: &OperatorStatus,
    api: &Api<Workload>,
) -> Result<(), Error> {
    if status.is_current(workload.status.as_ref()) {
        return Ok(());
    }
    let mut body = status.apply_body();
    body["metadata"] = json!({ "resourceVersion": workload.resource_version() });
    api.patch_status(
        &workload.name_any(),
        &PatchParams::apply(OPERATOR_FIELD_MANAGER).force(),
        &Patch::Apply(body),
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
    // Only a recorded assignment (label and status) was started, and only its Host may report
    // it stopped: one deleted before its assignment was recorded, or in the middle of a move,
    // has no Host to wait for (the one it leaves stops it on losing the label).
    let host = workload.assignment().host().map(str::to_owned);
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
        match host_health::cached(ctx, host) {
            Some(why) => Some(format!("its Host {host} {why}")),
            None if waited >= STOP_TIMEOUT => Some(format!(
                "its Host {host} did not report it stopped within {}s",
                STOP_TIMEOUT.as_secs()
            )),
            None => None,
        }
    } else {
        Some("no Host had it to run".to_owned())
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
