//! What the host reports about the workloads it runs, in the runtime's own terms: a workload
//! exists here once it started, so there is nothing to wait for; pulling images and how they
//! are described belong to whoever hands the runtime its components.

use serde::Serialize;

use crate::engine::Tier;

/// Where a component of a running workload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ComponentState {
    /// Invocations are served (components), or the service is running.
    Running,
    /// The service exited or trapped and waits out its back-off before the next start.
    Restarting,
    /// The service used up its restarts.
    Failed,
}

/// One component's status.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// The component's name in the workload.
    pub name: String,
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
    /// Where it is.
    pub state: ComponentState,
    /// How often the service was restarted (0 for other components).
    pub restarts: u32,
    /// Why the service is not running (its exit or trap), when it is not.
    pub message: Option<String>,
    /// Where the component's bytes came from, as given in its spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// The interfaces it imports.
    pub imports: Vec<String>,
    /// The interfaces it exports.
    pub exports: Vec<String>,
    /// Whether it is the workload's service.
    pub is_service: bool,
    /// Which compiler made the code it runs: `baseline` until Cranelift's code replaces it.
    pub tier: Tier,
}

/// A running workload's status: each component's, the service included.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadStatus {
    /// The workload's id, `namespace/name`.
    pub id: String,
    /// Its components, in the spec's order, the service last.
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
    /// The workload's id.
    pub workload: String,
    /// The component's name.
    pub component: String,
    /// Its new state.
    pub state: ComponentState,
    /// Its restarts so far.
    pub restarts: u32,
    /// Why, when it is not running.
    pub message: Option<String>,
}
