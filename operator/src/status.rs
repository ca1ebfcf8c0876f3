//! The operator's part of a Workload's status (`phase`, `host`, `observedGeneration`,
//! `hostnames`, the `Scheduled` condition), computed by pure functions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use weft_api::labels::{condition, reason};
use weft_api::{HostnameClaim, Phase, WorkloadStatus};

use crate::scheduler::find_condition;

/// Reason of `Scheduled=True`.
pub const REASON_SCHEDULED: &str = "Scheduled";

/// The `Scheduled` condition the operator wants, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheduling {
    /// Assigned to this Host.
    Assigned(String),
    /// No Host fits, for the reasons in the message.
    Unschedulable(String),
    /// Not placed at all, for `reason` (its host name claims are refused).
    Refused {
        reason: &'static str,
        message: String,
    },
}

impl Scheduling {
    pub fn host(&self) -> Option<&str> {
        match self {
            Self::Assigned(host) => Some(host),
            Self::Unschedulable(_) | Self::Refused { .. } => None,
        }
    }

    fn status_reason_message(&self) -> (&'static str, &'static str, String) {
        match self {
            Self::Assigned(host) => ("True", REASON_SCHEDULED, format!("assigned to {host}")),
            Self::Unschedulable(message) => ("False", reason::UNSCHEDULABLE, message.clone()),
            Self::Refused { reason, message } => ("False", reason, message.clone()),
        }
    }
}

/// The `Scheduled` condition for `scheduling`. `lastTransitionTime` is kept from `previous` unless
/// the status flips or the Workload changes Host: a move counts as a transition so that a
/// `Ready` condition reported before it can be told apart (see [`phase`]).
pub fn scheduled_condition(
    previous: Option<&Condition>,
    previous_host: Option<&str>,
    scheduling: &Scheduling,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let (status, reason, message) = scheduling.status_reason_message();
    let last_transition_time = match previous {
        Some(previous) if previous.status == status && previous_host == scheduling.host() => {
            previous.last_transition_time.clone()
        }
        // Whole seconds, as the API server stores them, so comparisons with stored times hold.
        _ => Time(Timestamp::from_second(now.as_second()).unwrap_or(now)),
    };
    Condition {
        type_: condition::SCHEDULED.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time,
        observed_generation: generation,
    }
}

/// The phase of a Workload, from the operator's decision and the host-reported `Ready` condition.
///
/// A `Ready` condition whose `lastTransitionTime` is older than the `Scheduled` one was reported
/// by a previous Host (before a move), so it is ignored until the new Host reports.
pub fn phase(deleting: bool, scheduled: &Condition, status: Option<&WorkloadStatus>) -> Phase {
    if deleting {
        return Phase::Terminating;
    }
    if scheduled.status != "True" {
        return Phase::Pending;
    }
    let ready = status
        .and_then(|status| find_condition(&status.conditions, condition::READY))
        .filter(|ready| ready.last_transition_time.0 >= scheduled.last_transition_time.0);
    match ready {
        Some(ready) if ready.status == "True" => Phase::Running,
        Some(ready) if ready.status == "False" && ready.reason == "Failed" => Phase::Failed,
        _ => Phase::Scheduled,
    }
}

/// Whether the Workload's Host reported it stopped (`Ready=False`, reason `Stopped`).
pub fn reported_stopped(status: Option<&WorkloadStatus>) -> bool {
    status
        .and_then(|status| find_condition(&status.conditions, condition::READY))
        .is_some_and(|ready| ready.status == "False" && ready.reason == reason::STOPPED)
}

/// The operator's fields of the status, as they should be.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorStatus {
    pub phase: Phase,
    pub host: Option<String>,
    pub observed_generation: Option<i64>,
    pub scheduled: Condition,
    /// The host names it claims and since when (see [`crate::claims::record`]).
    pub hostnames: Vec<HostnameClaim>,
}

impl OperatorStatus {
    /// Whether `current` already holds these fields (so no apply is needed).
    pub fn is_current(&self, current: Option<&WorkloadStatus>) -> bool {
        let Some(current) = current else {
            return false;
        };
        current.phase == Some(self.phase)
            && current.host == self.host
            && current.observed_generation == self.observed_generation
            && current.hostnames == self.hostnames
            && find_condition(&current.conditions, condition::SCHEDULED) == Some(&self.scheduled)
    }

    /// The server-side-apply body for the status subresource: only the operator's fields, so the
    /// host-agent's `components` and `Ready` stay its own. Leaving `host` out removes it.
    pub fn apply_body(&self) -> serde_json::Value {
        let mut status = json!({
            "phase": self.phase,
            "conditions": [self.scheduled],
            "hostnames": self.hostnames,
        });
        if let Some(host) = &self.host {
            status["host"] = json!(host);
        }
        if let Some(generation) = self.observed_generation {
            status["observedGeneration"] = json!(generation);
        }
        json!({
            "apiVersion": format!("{}/{}", weft_api::labels::API_GROUP, weft_api::labels::API_VERSION),
            "kind": "Workload",
            "status": status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::SignedDuration;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    fn ready(status: &str, reason: &str, second: i64) -> WorkloadStatus {
        WorkloadStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: status.into(),
                reason: reason.into(),
                message: String::new(),
                last_transition_time: Time(at(second)),
                observed_generation: Some(1),
            }],
            ..Default::default()
        }
    }

    fn assigned(host: &str, second: i64) -> Condition {
        scheduled_condition(
            None,
            None,
            &Scheduling::Assigned(host.into()),
            Some(1),
            at(second),
        )
    }

    #[test]
    fn phase_from_ready() {
        let scheduled = assigned("a", 10);
        assert_eq!(phase(false, &scheduled, None), Phase::Scheduled);
        let status = ready("True", "Running", 12);
        assert_eq!(phase(false, &scheduled, Some(&status)), Phase::Running);
        let status = ready("False", "Failed", 12);
        assert_eq!(phase(false, &scheduled, Some(&status)), Phase::Failed);
        let status = ready("False", "ImagePullBackOff", 12);
        assert_eq!(phase(false, &scheduled, Some(&status)), Phase::Scheduled);
        let status = ready("Unknown", "Starting", 12);
        assert_eq!(phase(false, &scheduled, Some(&status)), Phase::Scheduled);
        assert_eq!(phase(true, &scheduled, Some(&status)), Phase::Terminating);

        let pending = scheduled_condition(
            None,
            None,
            &Scheduling::Unschedulable("0/0 hosts fit".into()),
            Some(1),
            at(10),
        );
        let status = ready("True", "Running", 12);
        assert_eq!(phase(false, &pending, Some(&status)), Phase::Pending);
    }

    #[test]
    fn ready_from_before_a_move_is_ignored() {
        let on_a = assigned("a", 10);
        let status = ready("True", "Running", 12);
        // Moved to b at 20: the Ready=True from a (12) no longer counts.
        let on_b = scheduled_condition(
            Some(&on_a),
            Some("a"),
            &Scheduling::Assigned("b".into()),
            Some(1),
            at(20),
        );
        assert_eq!(on_b.last_transition_time, Time(at(20)));
        assert_eq!(phase(false, &on_b, Some(&status)), Phase::Scheduled);
        // Reported in the same second as the move: counts.
        let status = ready("True", "Running", 20);
        assert_eq!(phase(false, &on_b, Some(&status)), Phase::Running);
    }

    #[test]
    fn transition_time_kept_while_unchanged() {
        let first = assigned("a", 10);
        let again = scheduled_condition(
            Some(&first),
            Some("a"),
            &Scheduling::Assigned("a".into()),
            Some(2),
            at(30),
        );
        assert_eq!(again.last_transition_time, Time(at(10)));
        assert_eq!(again.observed_generation, Some(2));

        let unschedulable = scheduled_condition(
            Some(&first),
            Some("a"),
            &Scheduling::Unschedulable("x".into()),
            Some(2),
            at(30) + SignedDuration::from_millis(700),
        );
        assert_eq!(unschedulable.last_transition_time, Time(at(30)));
        assert_eq!(unschedulable.reason, "Unschedulable");
        assert_eq!(unschedulable.status, "False");
    }

    #[test]
    fn stopped_and_apply_body() {
        assert!(reported_stopped(Some(&ready("False", "Stopped", 1))));
        assert!(!reported_stopped(Some(&ready("False", "Failed", 1))));
        assert!(!reported_stopped(None));

        let desired = OperatorStatus {
            phase: Phase::Scheduled,
            host: Some("a".into()),
            observed_generation: Some(3),
            scheduled: assigned("a", 10),
            hostnames: Vec::new(),
        };
        let body = desired.apply_body();
        assert_eq!(body["kind"], "Workload");
        assert_eq!(body["apiVersion"], "weft.dev/v1alpha1");
        assert_eq!(body["status"]["phase"], "Scheduled");
        assert_eq!(body["status"]["host"], "a");
        assert_eq!(body["status"]["observedGeneration"], 3);
        assert_eq!(body["status"]["conditions"][0]["type"], "Scheduled");
        assert!(body["status"].get("components").is_none());

        let current = WorkloadStatus {
            phase: Some(Phase::Scheduled),
            host: Some("a".into()),
            observed_generation: Some(3),
            conditions: vec![
                assigned("a", 10),
                ready("False", "Starting", 11).conditions[0].clone(),
            ],
            hostnames: vec![],
            components: vec![],
        };
        assert!(desired.is_current(Some(&current)));
        assert!(!desired.is_current(None));
    }
}
