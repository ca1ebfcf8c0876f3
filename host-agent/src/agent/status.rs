//! The host-agent's part of a Workload's status, its components and the `Ready` condition,
//! from what this host knows of the Workload (`crate::observed`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use weft_api::labels::{condition, reason};
use weft_api::{ComponentState, ComponentStatus, Workload};

use crate::observed::Observed;

/// What this host knows of a Workload.
pub enum Known<'a> {
    /// Running, or pulling its images.
    Observed(&'a Observed),
    /// Its launch has begun but reported nothing yet.
    Launching,
    /// It cannot start, for this reason; with what the launcher last said of its components
    /// (a pull that failed for good: `ErrImageNeverPull`, `InvalidImageName`).
    Failed(&'a str, Option<&'a Observed>),
    /// Not here: stopped, or never started.
    Stopped,
}

/// What this agent writes into a Workload's status.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub components: Vec<ComponentStatus>,
    pub ready: Condition,
}

impl Report {
    /// The report for `workload`. `previous` is the report this host last applied: its `Ready`
    /// transition time is kept while the condition holds. Never the object's own condition,
    /// which may be another host's report from before a move: a new host always starts a new
    /// transition, so the operator never mistakes the old report for this one's.
    pub fn new(workload: &Workload, known: Known<'_>, previous: Option<&Report>) -> Self {
        let components = match &known {
            Known::Observed(observed) | Known::Failed(_, Some(observed)) => {
                observed.components.clone()
            }
            _ => Vec::new(),
        };
        let (ready, why, message) = match known {
            // `Failed` (the phase follows it); the components say why, in the kubelet's words.
            Known::Failed(failure, _) => (false, "Failed".to_string(), failure.to_string()),
            Known::Launching => (false, "Starting".into(), "pulling images".into()),
            Known::Observed(o) if o.components.is_empty() => {
                (false, "Starting".into(), "starting".into())
            }
            Known::Observed(o) if o.ready() => {
                (true, "Running".into(), "every component runs".into())
            }
            Known::Observed(o) => {
                let waiting = o
                    .components
                    .iter()
                    .find(|c| c.state != ComponentState::Running);
                let why = waiting
                    .and_then(|c| c.reason.clone())
                    .filter(|r| r != "Pulled")
                    .unwrap_or_else(|| match waiting.map(|c| c.state) {
                        Some(ComponentState::Failed) => "Failed".into(),
                        Some(ComponentState::Restarting) => "Restarting".into(),
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
        let status = if ready { "True" } else { "False" };
        let ready = Condition {
            type_: condition::READY.into(),
            status: status.into(),
            reason: why,
            message,
            observed_generation: workload.metadata.generation,
            last_transition_time: previous
                .map(|p| &p.ready)
                .filter(|c| c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(k8s_openapi::jiff::Timestamp::now())),
        };
        Self { components, ready }
    }

    /// The server-side apply patch that writes this report into `workload`'s status.
    pub fn patch(&self, workload: &Workload) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "weft.dev/v1alpha1",
            "kind": "Workload",
            "metadata": { "name": workload.metadata.name, "namespace": workload.metadata.namespace },
            "status": { "components": self.components, "conditions": [self.ready] },
        })
    }
}
