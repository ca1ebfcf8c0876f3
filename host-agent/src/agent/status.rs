//! The host-agent's part of a Workload's status — its components and the `Ready` condition —
//! from what the runtime (or the launcher, while pulling) reports.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use weft_api::labels::{condition, reason};
use weft_api::{ComponentState, ComponentStatus, Workload};
use weft_runtime::WorkloadStatus;

/// What this host knows of a Workload.
pub enum Known<'a> {
    /// Running, or pulling its images.
    Status(&'a WorkloadStatus),
    /// Its launch has begun but reported nothing yet.
    Launching,
    /// It cannot start, for this reason.
    Failed(&'a str),
    /// Not here: stopped, or never started.
    Stopped,
}

/// The status to apply for `workload`. `previous` is the `Ready` condition this host last
/// applied: its transition time is kept while the status holds. Never the object's own
/// condition, which may be another host's report from before a move: a new host always starts
/// a new transition, so the operator never mistakes the old report for this one's.
pub fn report(
    workload: &Workload,
    known: Known<'_>,
    previous: Option<&Condition>,
) -> serde_json::Value {
    let components: Vec<ComponentStatus> = match &known {
        Known::Status(s) => s.components.iter().map(component).collect(),
        _ => Vec::new(),
    };
    let (ready, why, message) = match known {
        Known::Failed(failure) => (false, "Failed".to_string(), failure.to_string()),
        Known::Launching => (false, "Starting".into(), "pulling images".into()),
        Known::Status(s) if s.components.is_empty() => {
            (false, "Starting".into(), "starting".into())
        }
        Known::Status(s) if s.ready() => (true, "Running".into(), "every component runs".into()),
        Known::Status(s) => {
            let waiting = s
                .components
                .iter()
                .find(|c| c.state != weft_runtime::ComponentState::Running);
            let why = waiting
                .and_then(|c| c.reason.clone())
                .filter(|r| r != "Pulled")
                .unwrap_or_else(|| match waiting.map(|c| c.state) {
                    Some(weft_runtime::ComponentState::Failed) => "Failed".into(),
                    Some(weft_runtime::ComponentState::Restarting) => "Restarting".into(),
                    _ => "Starting".into(),
                });
            let message = waiting
                .and_then(|c| c.message.clone().map(|m| format!("{}: {m}", c.name)))
                .unwrap_or_else(|| "starting".into());
            (false, why, message)
        }
        Known::Stopped => (
            false,
            reason::STOPPED.to_string(),
            "stopped on its host".to_string(),
        ),
    };
    let condition = Condition {
        type_: condition::READY.into(),
        status: if ready { "True" } else { "False" }.into(),
        reason: why,
        message,
        observed_generation: workload.metadata.generation,
        last_transition_time: previous
            .filter(|c| c.status == if ready { "True" } else { "False" })
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(k8s_openapi::jiff::Timestamp::now())),
    };
    serde_json::json!({
        "apiVersion": "weft.dev/v1alpha1",
        "kind": "Workload",
        "metadata": { "name": workload.metadata.name, "namespace": workload.metadata.namespace },
        "status": { "components": components, "conditions": [condition] },
    })
}

fn component(c: &weft_runtime::ComponentStatus) -> ComponentStatus {
    use weft_runtime::ComponentState as Runtime;
    ComponentStatus {
        name: c.name.clone(),
        digest: Some(c.digest.clone()).filter(|d| !d.is_empty()),
        state: match c.state {
            Runtime::Waiting => ComponentState::Waiting,
            Runtime::Running => ComponentState::Running,
            Runtime::Restarting => ComponentState::Restarting,
            Runtime::Failed => ComponentState::Failed,
        },
        reason: c.reason.clone(),
        restarts: c.restarts,
        message: c.message.clone(),
        image_id: c.image_id.clone(),
        imports: c.imports.clone(),
        exports: c.exports.clone(),
    }
}
