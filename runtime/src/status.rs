//! What the host reports about the workloads it runs, in the runtime's own terms: a workload
//! exists here once it started, so there is nothing to wait for; pulling images and how they
//! are described belong to whoever hands the runtime its components.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ComponentState {
    /// Invocations are served (components), or the service is running.
    Running,
    /// The service exited or trapped and waits out its back-off before the next start.
    Restarting,
    /// The service used up its restarts.
    Failed,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    pub name: String,
    pub digest: String,
    pub state: ComponentState,
    pub restarts: u32,
    /// Why the service is not running (its exit or trap), when it is not.
    pub message: Option<String>,
    /// Where the component's bytes came from, as given in its spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub is_service: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadStatus {
    pub id: String,
    pub components: Vec<ComponentStatus>,
}

impl WorkloadStatus {
    /// Ready when every component is running.
    pub fn ready(&self) -> bool {
        self.components
            .iter()
            .all(|c| c.state == ComponentState::Running)
    }
}

/// A change of a component's state, broadcast by the host.
#[derive(Clone, Debug)]
pub struct StatusEvent {
    pub workload: String,
    pub component: String,
    pub state: ComponentState,
    pub restarts: u32,
    pub message: Option<String>,
}
