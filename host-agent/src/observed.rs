//! What this host knows of a workload, in the Workload API's terms: the runtime's status of one
//! that runs, or the launcher's account of one still pulling. This is the one place the
//! runtime's words become the API's; the admin port's `/workloads` and the Workload's status
//! both read from here.

use serde::Serialize;
use weft_api::{ComponentState, ComponentStatus};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observed {
    /// `namespace/name`.
    pub id: String,
    pub components: Vec<ComponentStatus>,
}

impl Observed {
    /// A running workload, as the runtime reports it.
    pub fn from_runtime(status: &weft_runtime::WorkloadStatus) -> Self {
        Self {
            id: status.id.clone(),
            components: status.components.iter().map(component).collect(),
        }
    }

    /// Ready when it has components and every one runs.
    pub fn ready(&self) -> bool {
        !self.components.is_empty()
            && self
                .components
                .iter()
                .all(|c| c.state == ComponentState::Running)
    }
}

fn component(c: &weft_runtime::ComponentStatus) -> ComponentStatus {
    use weft_runtime::ComponentState as Runtime;
    ComponentStatus {
        name: c.name.clone(),
        digest: Some(c.digest.clone()).filter(|d| !d.is_empty()),
        state: match c.state {
            Runtime::Running => ComponentState::Running,
            Runtime::Restarting => ComponentState::Restarting,
            Runtime::Failed => ComponentState::Failed,
        },
        reason: None,
        restarts: c.restarts,
        message: c.message.clone(),
        image_id: c.image_id.clone(),
        imports: c.imports.clone(),
        exports: c.exports.clone(),
    }
}
