//! The Host controller: marks a Host `Ready=False` when its heartbeat Lease expires (reason
//! `LeaseExpired`) or its Pod is deleted (reason `PodDeleted`), so the Workload controller moves
//! its Workloads. Each Host is requeued exactly at its Lease's expiry. A Host whose Pod is gone,
//! whose Lease has lapsed and that runs nothing any more is deleted: its agent will not come
//! back (a DaemonSet's replacement Pod registers a Host of its own).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
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
use crate::metrics::HOST_CONTROLLER;
use crate::scheduler::{LeaseState, find_condition, host_ready, lease_state};

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
    /// Healthy; check again at this instant (its Lease's expiry).
    CheckAt(Timestamp),
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

/// The verdict on a Host whose `Ready` is `True`, given its Lease and Pod. `ready_since` is the
/// `lastTransitionTime` of its Ready condition.
pub fn verdict(
    lease_name: &str,
    lease: Option<&Lease>,
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
    match lease_state(lease, now) {
        LeaseState::Valid { expires_at } => Verdict::CheckAt(expires_at),
        LeaseState::Expired => {
            let duration = lease
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.lease_duration_seconds)
                .unwrap_or_default();
            Verdict::NotReady {
                reason: reason::LEASE_EXPIRED,
                message: format!("Lease {lease_name} was not renewed within {duration}s"),
            }
        }
        LeaseState::Missing => {
            let deadline = ready_since.checked_add(MISSING_LEASE_GRACE).unwrap_or(now);
            if deadline > now {
                Verdict::CheckAt(deadline)
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
    let mut decision = verdict(
        &lease_name,
        cached.as_deref(),
        pod,
        &pod_name,
        ready_since,
        Timestamp::now(),
    );
    if matches!(decision, Verdict::NotReady { reason, .. } if reason == reason::LEASE_EXPIRED) {
        // Confirm with the API server: the cache may lag the latest renewal.
        let fresh = ctx.fresh_host_lease(&name).await?;
        decision = verdict(
            &lease_name,
            fresh.as_ref(),
            pod,
            &pod_name,
            ready_since,
            Timestamp::now(),
        );
    }

    match decision {
        Verdict::CheckAt(at) => {
            let wait = at.duration_since(Timestamp::now()).unsigned_abs();
            Ok(Action::requeue(wait + EXPIRY_SLACK))
        }
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
    let lease = ctx.host_lease(&name);
    let alive = matches!(
        lease_state(lease.as_deref(), Timestamp::now()),
        LeaseState::Valid { .. }
    );
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
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use weft_api::HostSpec;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    fn lease(renewed: i64) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(at(renewed))),
                lease_duration_seconds: Some(6),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn requeues_at_lease_expiry() {
        let l = lease(10);
        assert_eq!(
            verdict(
                "weft-host-a",
                Some(&l),
                PodState::Running,
                "",
                at(0),
                at(12)
            ),
            Verdict::CheckAt(at(16))
        );
    }

    #[test]
    fn expired_lease() {
        let l = lease(10);
        assert_eq!(
            verdict(
                "weft-host-a",
                Some(&l),
                PodState::Unknown,
                "",
                at(0),
                at(16)
            ),
            Verdict::NotReady {
                reason: "LeaseExpired",
                message: "Lease weft-host-a was not renewed within 6s".into()
            }
        );
    }

    #[test]
    fn missing_lease_after_grace() {
        assert_eq!(
            verdict("weft-host-a", None, PodState::Unknown, "", at(0), at(3)),
            Verdict::CheckAt(at(10))
        );
        assert_eq!(
            verdict("weft-host-a", None, PodState::Unknown, "", at(0), at(10)),
            Verdict::NotReady {
                reason: "LeaseExpired",
                message: "Lease weft-host-a does not exist".into()
            }
        );
    }

    #[test]
    fn deleted_pod_wins_over_a_valid_lease() {
        let l = lease(10);
        assert_eq!(
            verdict(
                "weft-host-a",
                Some(&l),
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
