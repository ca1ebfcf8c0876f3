//! The Host controller: marks a Host `Ready=False` when its heartbeat Lease expires by the
//! operator's own clock (reason `LeaseExpired`, see [`crate::lease_clock`]) or its Pod is
//! deleted (reason `PodDeleted`), so the Workload controller moves its Workloads. Each Host is
//! requeued exactly at its Lease's expiry. A Host whose Pod is gone,
//! whose Lease has lapsed and that runs nothing any more is deleted: its agent will not come
//! back (a DaemonSet's replacement Pod registers a Host of its own).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::json;
use weft_api::Host;
use weft_api::labels::{
    HOST_LABEL, HOST_POD_ANNOTATION, OPERATOR_FIELD_MANAGER, condition, reason,
};

use crate::context::Context;
use crate::error::{Error, chain};
use crate::lease_clock::{LeaseState, MARGIN};
use crate::metrics::HOST_CONTROLLER;
use crate::scheduler::{find_condition, host_ready};

/// Host `Ready=False`: the host-agent's Pod was deleted.
pub const REASON_POD_DELETED: &str = "PodDeleted";

/// How long a Ready Host may go without any Lease before it counts as expired: the agent may
/// report Ready just before it creates its first Lease.
pub const MISSING_LEASE_GRACE: SignedDuration = SignedDuration::from_secs(10);

/// Slack after a Lease's expiry before checking it, so the expiry has surely passed.
const EXPIRY_SLACK: Duration = Duration::from_millis(100);
/// Requeue after an error.
const ERROR_REQUEUE: Duration = Duration::from_secs(2);
/// How often a not-Ready Host whose Pod is gone is looked at again until it can be deleted.
const GONE_RECHECK: Duration = Duration::from_secs(2);

/// What should happen to a Ready Host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy; check again after this long (when its Lease runs out).
    CheckIn(Duration),
    /// Mark it `Ready=False` with this reason and message.
    NotReady {
        reason: &'static str,
        message: String,
    },
}

/// Where the Pod named by a Host's annotation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodState {
    /// The Host names no Pod, or one outside the watched namespace.
    Unknown,
    Running,
    /// Deleted, or being deleted.
    Deleted,
}

/// The verdict on a Host whose `Ready` is `True`, given its Lease (and its duration) and Pod.
/// `ready_since` is the `lastTransitionTime` of its Ready condition.
pub fn verdict(
    lease_name: &str,
    lease: (LeaseState, Duration),
    pod: PodState,
    pod_name: &str,
    ready_since: Timestamp,
    now: Timestamp,
) -> Verdict {
    if pod == PodState::Deleted {
        return Verdict::NotReady {
            reason: REASON_POD_DELETED,
            message: format!("Pod {pod_name} was deleted"),
        };
    }
    let (state, duration) = lease;
    match state {
        LeaseState::Valid { remaining } => Verdict::CheckIn(remaining),
        LeaseState::Expired => Verdict::NotReady {
            reason: reason::LEASE_EXPIRED,
            message: format!(
                "Lease {lease_name} was not seen renewed within {}s (+{}s margin)",
                duration.as_secs(),
                MARGIN.as_secs()
            ),
        },
        LeaseState::Missing => {
            let deadline = ready_since.checked_add(MISSING_LEASE_GRACE).unwrap_or(now);
            if deadline > now {
                Verdict::CheckIn(deadline.duration_since(now).unsigned_abs())
            } else {
                Verdict::NotReady {
                    reason: reason::LEASE_EXPIRED,
                    message: format!("Lease {lease_name} does not exist"),
                }
            }
        }
    }
}

/// The Pod a Host names in its annotation, as `(namespace, name)`.
pub fn annotated_pod(host: &Host) -> Option<(&str, &str)> {
    host.annotations()
        .get(HOST_POD_ANNOTATION)
        .and_then(|value| value.split_once('/'))
}

fn pod_state(host: &Host, pods: &Store<Pod>, namespace: &str) -> PodState {
    match annotated_pod(host) {
        Some((pod_namespace, name)) if pod_namespace == namespace => {
            match pods.get(&ObjectRef::new(name).within(namespace)) {
                None => PodState::Deleted,
                Some(pod) if pod.meta().deletion_timestamp.is_some() => PodState::Deleted,
                Some(_) => PodState::Running,
            }
        }
        _ => PodState::Unknown,
    }
}

/// Reconciles one Host.
#[tracing::instrument(name = "reconcile Host", skip_all, fields(name = host.name_any()))]
pub async fn reconcile(host: Arc<Host>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciled(HOST_CONTROLLER);
    ctx.caches_ready().await?;
    if !host_ready(&host) {
        return collect_if_gone(&host, &ctx).await;
    }
    let name = host.name_any();
    let lease_name = Context::lease_name(&name);
    let ready_since = host
        .status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, condition::READY))
        .map_or_else(Timestamp::now, |c| c.last_transition_time.0);
    let pod = pod_state(&host, &ctx.caches.pods, &ctx.namespace);
    let pod_name = host
        .annotations()
        .get(HOST_POD_ANNOTATION)
        .cloned()
        .unwrap_or_default();

    let cached = ctx.host_lease(&name);
    let duration = Duration::from_secs(
        cached
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or_default(),
    );
    let mut decision = verdict(
        &lease_name,
        (ctx.lease_clock.state(cached.as_deref()), duration),
        pod,
        &pod_name,
        ready_since,
        Timestamp::now(),
    );
    if matches!(decision, Verdict::NotReady { reason, .. } if reason == reason::LEASE_EXPIRED) {
        // Confirm with the API server: the cache may lag the latest renewal.
        let fresh = ctx.fresh_host_lease_state(&name).await?;
        decision = verdict(
            &lease_name,
            (fresh, duration),
            pod,
            &pod_name,
            ready_since,
            Timestamp::now(),
        );
    }

    match decision {
        Verdict::CheckIn(wait) => Ok(Action::requeue(wait + EXPIRY_SLACK)),
        Verdict::NotReady { reason, message } => {
            mark_not_ready(&host, reason, &message, &ctx).await?;
            tracing::info!(host = %name, reason, "Host is no longer ready: {message}");
            Ok(Action::await_change())
        }
    }
}

/// Deletes a not-Ready Host whose Pod is gone, whose Lease has lapsed and to which no Workload
/// is assigned; otherwise waits for the agent to report again (a Host change) or, while its Pod
/// is gone, looks again shortly.
async fn collect_if_gone(host: &Host, ctx: &Context) -> Result<Action, Error> {
    if pod_state(host, &ctx.caches.pods, &ctx.namespace) != PodState::Deleted {
        return Ok(Action::await_change());
    }
    let name = host.name_any();
    let alive = matches!(ctx.host_lease_state(&name), LeaseState::Valid { .. });
    let assigned = ctx
        .caches
        .workloads
        .state()
        .iter()
        .any(|w| w.labels().get(HOST_LABEL) == Some(&name));
    if alive || assigned {
        return Ok(Action::requeue(GONE_RECHECK));
    }
    match Api::<Host>::all(ctx.client.clone())
        .delete(&name, &Default::default())
        .await
    {
        Ok(_) => {
            tracing::info!(host = %name, "Host deleted: its Pod and Lease are gone and it runs nothing")
        }
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(source) => {
            return Err(Error::Kube {
                what: format!("deleting Host {name}"),
                source,
            });
        }
    }
    Ok(Action::await_change())
}

/// Applies `Ready=False` to the Host's status: only that condition entry, forced, so the
/// host-agent takes it back when it reports again.
async fn mark_not_ready(
    host: &Host,
    reason: &str,
    message: &str,
    ctx: &Context,
) -> Result<(), Error> {
    let name = host.name_any();
    let now = Timestamp::now();
    let body = json!({
        "apiVersion": Host::api_version(&()),
        "kind": Host::kind(&()),
        "status": {
            "conditions": [{
                "type": condition::READY,
                "status": "False",
                "reason": reason,
                "message": message,
                "lastTransitionTime": Time(
                    Timestamp::from_second(now.as_second()).unwrap_or(now)
                ),
                "observedGeneration": host.meta().generation,
            }]
        }
    });
    let api: Api<Host> = Api::all(ctx.client.clone());
    api.patch_status(
        &name,
        &PatchParams::apply(OPERATOR_FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(Error::kube(format!(
        "marking Host {name} not ready ({reason})"
    )))?;
    Ok(())
}

/// Logs a failed reconciliation and retries soon.
pub fn error_policy(host: Arc<Host>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(HOST_CONTROLLER);
    tracing::warn!(host = %host.name_any(), error = %chain(error), "reconciling a Host failed");
    Action::requeue(ERROR_REQUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::HostSpec;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    const SIX: Duration = Duration::from_secs(6);

    #[test]
    fn requeues_at_lease_expiry() {
        let valid = LeaseState::Valid {
            remaining: Duration::from_secs(4),
        };
        assert_eq!(
            verdict(
                "weft-host-a",
                (valid, SIX),
                PodState::Running,
                "",
                at(0),
                at(12)
            ),
            Verdict::CheckIn(Duration::from_secs(4))
        );
    }

    #[test]
    fn expired_lease() {
        assert_eq!(
            verdict(
                "weft-host-a",
                (LeaseState::Expired, SIX),
                PodState::Unknown,
                "",
                at(0),
                at(16)
            ),
            Verdict::NotReady {
                reason: "LeaseExpired",
                message: "Lease weft-host-a was not seen renewed within 6s (+1s margin)".into()
            }
        );
    }

    #[test]
    fn missing_lease_after_grace() {
        assert_eq!(
            verdict(
                "weft-host-a",
                (LeaseState::Missing, SIX),
                PodState::Unknown,
                "",
                at(0),
                at(3)
            ),
            Verdict::CheckIn(Duration::from_secs(7))
        );
        assert_eq!(
            verdict(
                "weft-host-a",
                (LeaseState::Missing, SIX),
                PodState::Unknown,
                "",
                at(0),
                at(10)
            ),
            Verdict::NotReady {
                reason: "LeaseExpired",
                message: "Lease weft-host-a does not exist".into()
            }
        );
    }

    #[test]
    fn deleted_pod_wins_over_a_valid_lease() {
        let valid = LeaseState::Valid { remaining: SIX };
        assert_eq!(
            verdict(
                "weft-host-a",
                (valid, SIX),
                PodState::Deleted,
                "weft/agent-0",
                at(0),
                at(11)
            ),
            Verdict::NotReady {
                reason: "PodDeleted",
                message: "Pod weft/agent-0 was deleted".into()
            }
        );
    }

    #[test]
    fn pod_annotation() {
        let mut host = Host::new(
            "a",
            HostSpec {
                address: "10.0.0.1".into(),
                http_port: 8080,
                unschedulable: false,
            },
        );
        assert_eq!(annotated_pod(&host), None);
        host.annotations_mut()
            .insert(HOST_POD_ANNOTATION.into(), "weft-system/agent-0".into());
        assert_eq!(annotated_pod(&host), Some(("weft-system", "agent-0")));
        let (store, _writer) = kube::runtime::reflector::store::<Pod>();
        assert_eq!(pod_state(&host, &store, "weft-system"), PodState::Deleted);
        assert_eq!(pod_state(&host, &store, "other"), PodState::Unknown);
    }
}
