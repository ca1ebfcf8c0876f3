//! The status of a WorkloadDeployment, computed from its replicas: the counts, the selector the
//! `/scale` subresource reports, and the conditions `Available` and `Progressing` with the
//! reasons a Deployment uses, so tools that wait on Deployments read it the same way.

use k8s_openapi::api::apps::v1::DeploymentCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use weft_api::labels::DEPLOYMENT_LABEL;
use weft_api::{HostnameClaim, WorkloadDeploymentSpec, WorkloadDeploymentStatus};

use crate::rollout::Replica;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
/// `Progressing=False`: no progress within `progressDeadlineSeconds`.
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
/// `Progressing=True`: every replica is of the current template and available.
pub const NEW_REPLICAS_AVAILABLE: &str = "NewReplicaSetAvailable";

/// What the status is computed from.
pub struct Observed<'a> {
    pub name: &'a str,
    pub generation: Option<i64>,
    pub spec: &'a WorkloadDeploymentSpec,
    pub hash: &'a str,
    pub replicas: &'a [Replica],
    pub previous: Option<&'a WorkloadDeploymentStatus>,
    /// This reconciliation created or deleted replicas.
    pub acted: bool,
    /// The host names the template claims, and since when (see [`crate::claims::record`]).
    pub hostnames: Vec<HostnameClaim>,
    pub now: Timestamp,
}

impl Observed<'_> {
    /// The new status.
    pub fn status(&self) -> WorkloadDeploymentStatus {
        let live: Vec<&Replica> = self.replicas.iter().filter(|r| !r.terminating).collect();
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let updated = live.iter().filter(|r| r.hash == self.hash).count();
        let ready = live.iter().filter(|r| r.ready).count();
        let mut status = WorkloadDeploymentStatus {
            observed_generation: self.generation,
            replicas: count(live.len()),
            updated_replicas: count(updated),
            ready_replicas: count(ready),
            available_replicas: count(ready),
            unavailable_replicas: (self.spec.replicas - count(ready)).max(0),
            selector: Some(format!("{DEPLOYMENT_LABEL}={}", self.name)),
            template_hash: Some(self.hash.to_owned()),
            conditions: vec![],
            hostnames: self.hostnames.clone(),
        };
        status.conditions = vec![self.available(&status), self.progressing(&status)];
        status
    }

    fn previous_condition(&self, type_: &str) -> Option<&DeploymentCondition> {
        self.previous?.conditions.iter().find(|c| c.type_ == type_)
    }

    /// A condition, keeping the transition time while the status stays and the update time
    /// while the reason and message stay.
    fn condition(
        &self,
        type_: &str,
        status: &str,
        reason: &str,
        message: String,
    ) -> DeploymentCondition {
        let previous = self.previous_condition(type_);
        let now = Some(Time(self.now));
        let same_status = previous.filter(|c| c.status == status);
        let same = same_status.filter(|c| {
            c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(&message)
        });
        DeploymentCondition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message),
            last_transition_time: same_status
                .map_or(now.clone(), |c| c.last_transition_time.clone()),
            last_update_time: same.map_or(now, |c| c.last_update_time.clone()),
        }
    }

    fn available(&self, status: &WorkloadDeploymentStatus) -> DeploymentCondition {
        let (_, max_unavailable) = self.spec.rolling_bounds();
        let needed = (self.spec.replicas - max_unavailable).max(0);
        if status.available_replicas >= needed {
            self.condition(
                AVAILABLE,
                "True",
                "MinimumReplicasAvailable",
                "WorkloadDeployment has minimum availability.".into(),
            )
        } else {
            self.condition(
                AVAILABLE,
                "False",
                "MinimumReplicasUnavailable",
                format!(
                    "{} of at least {needed} replicas available.",
                    status.available_replicas
                ),
            )
        }
    }

    fn progressing(&self, status: &WorkloadDeploymentStatus) -> DeploymentCondition {
        let name = self.name;
        let complete = status.updated_replicas == self.spec.replicas
            && status.replicas == self.spec.replicas
            && status.available_replicas == self.spec.replicas;
        if self.spec.paused {
            return self.condition(
                PROGRESSING,
                "Unknown",
                "DeploymentPaused",
                format!("WorkloadDeployment {name} is paused."),
            );
        }
        if complete {
            return self.condition(
                PROGRESSING,
                "True",
                NEW_REPLICAS_AVAILABLE,
                format!(
                    "WorkloadDeployment {name} has rolled out template {}.",
                    self.hash
                ),
            );
        }
        let previous = self.previous_condition(PROGRESSING);
        let moved = self.acted
            || self.previous.is_none_or(|p| !same_progress(p, status))
            || previous.is_none();
        let last_progress = previous
            .and_then(|c| c.last_update_time.as_ref())
            .map_or(self.now, |t| t.0);
        let deadline = SignedDuration::from_secs(self.spec.progress_deadline());
        let stuck =
            previous.is_some_and(|c| c.reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED));
        if !moved && (stuck || self.now.duration_since(last_progress) > deadline) {
            return self.condition(
                PROGRESSING,
                "False",
                PROGRESS_DEADLINE_EXCEEDED,
                format!("WorkloadDeployment {name} has timed out progressing: template {} has {} of {} replicas available.", self.hash, count_new_available(self.replicas, self.hash), self.spec.replicas),
            );
        }
        let message = format!(
            "WorkloadDeployment {name} is progressing: {} of {} replicas updated, {} available.",
            status.updated_replicas, self.spec.replicas, status.available_replicas
        );
        let mut condition = self.condition(PROGRESSING, "True", "ReplicaSetUpdated", message);
        if moved {
            condition.last_update_time = Some(Time(self.now));
        } else if let Some(kept) = previous.and_then(|c| c.last_update_time.clone()) {
            // The message changes with the counts only; the clock runs from the last progress.
            condition.last_update_time = Some(kept);
        }
        condition
    }

    /// How long until the progress deadline would pass, for the requeue.
    pub fn until_deadline(&self, status: &WorkloadDeploymentStatus) -> Option<std::time::Duration> {
        let progressing = status.conditions.iter().find(|c| c.type_ == PROGRESSING)?;
        if progressing.reason.as_deref() != Some("ReplicaSetUpdated") {
            return None;
        }
        let since = progressing.last_update_time.as_ref()?.0;
        let deadline = since + SignedDuration::from_secs(self.spec.progress_deadline());
        Some(deadline.duration_since(self.now).unsigned_abs())
    }
}

fn count_new_available(replicas: &[Replica], hash: &str) -> usize {
    replicas
        .iter()
        .filter(|r| !r.terminating && r.ready && r.hash == hash)
        .count()
}

/// Whether two statuses describe the same point of a rollout.
fn same_progress(a: &WorkloadDeploymentStatus, b: &WorkloadDeploymentStatus) -> bool {
    (
        a.replicas,
        a.updated_replicas,
        a.ready_replicas,
        &a.template_hash,
        a.observed_generation,
    ) == (
        b.replicas,
        b.updated_replicas,
        b.ready_replicas,
        &b.template_hash,
        b.observed_generation,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(replicas: i32) -> WorkloadDeploymentSpec {
        serde_yaml::from_str(&format!(
            "replicas: {replicas}
progressDeadlineSeconds: 10
template: {{spec: {{components: [{{name: c, image: r/c:1}}]}}}}"
        ))
        .unwrap()
    }

    fn replica(name: &str, hash: &str, ready: bool) -> Replica {
        Replica {
            name: name.into(),
            hash: hash.into(),
            ready,
            host: Some("h".into()),
            terminating: false,
            created: None,
        }
    }

    fn observe<'a>(
        spec: &'a WorkloadDeploymentSpec,
        replicas: &'a [Replica],
        previous: Option<&'a WorkloadDeploymentStatus>,
        at: i64,
    ) -> WorkloadDeploymentStatus {
        Observed {
            name: "web",
            generation: Some(2),
            spec,
            hash: "new",
            replicas,
            previous,
            acted: false,
            hostnames: vec![],
            now: Timestamp::from_second(at).unwrap(),
        }
        .status()
    }

    fn reason(status: &WorkloadDeploymentStatus, type_: &str) -> String {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        format!("{}/{}", c.status, c.reason.clone().unwrap())
    }

    #[test]
    fn a_finished_rollout() {
        let s = spec(2);
        let replicas = [replica("a", "new", true), replica("b", "new", true)];
        let status = observe(&s, &replicas, None, 100);
        assert_eq!(
            (
                status.replicas,
                status.updated_replicas,
                status.available_replicas
            ),
            (2, 2, 2)
        );
        assert_eq!(status.selector.as_deref(), Some("weft.dev/deployment=web"));
        assert_eq!(reason(&status, AVAILABLE), "True/MinimumReplicasAvailable");
        assert_eq!(reason(&status, PROGRESSING), "True/NewReplicaSetAvailable");
    }

    #[test]
    fn a_rollout_without_progress_exceeds_its_deadline_and_progress_lifts_it() {
        let s = spec(2);
        let stuck = [
            replica("a", "old", true),
            replica("b", "old", true),
            replica("c", "new", false),
        ];
        let first = observe(&s, &stuck, None, 100);
        assert_eq!(reason(&first, PROGRESSING), "True/ReplicaSetUpdated");
        let later = observe(&s, &stuck, Some(&first), 105);
        assert_eq!(reason(&later, PROGRESSING), "True/ReplicaSetUpdated");
        let late = observe(&s, &stuck, Some(&later), 111);
        assert_eq!(reason(&late, PROGRESSING), "False/ProgressDeadlineExceeded");
        assert_eq!(reason(&late, AVAILABLE), "True/MinimumReplicasAvailable");
        let still = observe(&s, &stuck, Some(&late), 200);
        assert_eq!(
            reason(&still, PROGRESSING),
            "False/ProgressDeadlineExceeded"
        );

        let fixed = [
            replica("a", "old", true),
            replica("b", "old", true),
            replica("c", "new", true),
        ];
        let moving = observe(&s, &fixed, Some(&still), 201);
        assert_eq!(reason(&moving, PROGRESSING), "True/ReplicaSetUpdated");
    }
}
