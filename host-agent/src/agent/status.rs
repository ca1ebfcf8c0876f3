//! The host-agent's part of a Workload's status — its components and the `Ready` condition —
//! from what the runtime (or the launcher, while pulling) reports.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use weft_api::labels::{condition, reason};
use weft_api::{ComponentState, ComponentStatus, Workload};
use weft_runtime::WorkloadStatus;

/// What to report for `workload`: running or pulling (`status`), failed to start (`failure`),
/// or stopped (neither).
pub fn report(
    workload: &Workload,
    status: Option<&WorkloadStatus>,
    failure: Option<&str>,
) -> serde_json::Value {
    let components: Vec<ComponentStatus> = status
        .map(|s| s.components.iter().map(component).collect())
        .unwrap_or_default();
    let (ready, why, message) = match (status, failure) {
        (_, Some(failure)) => (false, "Failed".to_string(), failure.to_string()),
        (Some(s), None) if s.ready() => (true, "Running".into(), "every component runs".into()),
        (Some(s), None) => {
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
        (None, None) => (
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
        last_transition_time: since(workload, ready),
    };
    serde_json::json!({
        "apiVersion": "weft.dev/v1alpha1",
        "kind": "Workload",
        "metadata": { "name": workload.metadata.name, "namespace": workload.metadata.namespace },
        "status": { "components": components, "conditions": [condition] },
    })
}

/// Keeps the transition time while the condition's status does not change.
fn since(workload: &Workload, ready: bool) -> Time {
    let status = if ready { "True" } else { "False" };
    workload
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition::READY))
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(k8s_openapi::jiff::Timestamp::now()))
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
