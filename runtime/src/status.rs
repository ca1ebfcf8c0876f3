//! What the host reports about the workloads it runs.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ComponentState {
    /// Not started yet: its image is being pulled, or waits out a pull back-off (see `reason`).
    Waiting,
    /// Ready: invocations are served (components) or the service is running.
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
    /// A short CamelCase word for why it is in this state (`ErrImagePull`, `ImagePullBackOff`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub restarts: u32,
    pub message: Option<String>,
    /// The image as the Workload names it, and the digest reference it resolved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
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
