//! What happens to a workload's components on this host, in the kubelet's words: the launcher,
//! the reconciler and the runtime's service supervisor report here, and the agent turns each
//! report into a Kubernetes Event on the Workload (`agent/events.rs`). In local mode nobody
//! listens and reports cost nothing.

use tokio::sync::broadcast;

/// How many reports may wait for a slow listener before the oldest are dropped.
const BACKLOG: usize = 1024;

/// Why something was reported: the Event's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Pulling,
    Pulled,
    /// A pull failed, or a service used up its restarts.
    Failed,
    /// Waiting before pulling or starting again.
    BackOff,
    Started,
    /// About to stop a running workload.
    Killing,
    Stopped,
    /// A service exited and is restarted.
    Unhealthy,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pulling => "Pulling",
            Self::Pulled => "Pulled",
            Self::Failed => "Failed",
            Self::BackOff => "BackOff",
            Self::Started => "Started",
            Self::Killing => "Killing",
            Self::Stopped => "Stopped",
            Self::Unhealthy => "Unhealthy",
        }
    }

    /// Whether the Event is a Warning rather than Normal.
    pub fn is_warning(self) -> bool {
        matches!(self, Self::Failed | Self::BackOff | Self::Unhealthy)
    }
}

/// One report about a workload (`namespace/name`), and about one of its components if named.
#[derive(Clone, Debug)]
pub struct Report {
    pub workload: String,
    pub component: Option<String>,
    pub reason: Reason,
    pub message: String,
}

/// Where reports go.
#[derive(Clone)]
pub struct Reports(broadcast::Sender<Report>);

impl Default for Reports {
    fn default() -> Self {
        Self(broadcast::channel(BACKLOG).0)
    }
}

impl Reports {
    pub fn send(&self, workload: &str, component: Option<&str>, reason: Reason, message: String) {
        // Nobody listening (local mode) is fine.
        let _ = self.0.send(Report {
            workload: workload.to_owned(),
            component: component.map(str::to_owned),
            reason,
            message,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Report> {
        self.0.subscribe()
    }
}
