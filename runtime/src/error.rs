//! The runtime's error type. Messages are written for people: they end up in logs and in a
//! Workload's status, so each names the component or interface it is about. An error another
//! one caused keeps it as its [`source`](std::error::Error::source), so a status or a span can
//! show the whole chain (see [`error_chain`](crate::error_chain)).

use std::path::PathBuf;

/// Everything that can go wrong while starting, running or stopping a workload.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes given for a component are not a component this host can run as asked.
    #[error("component {component}: {reason}")]
    InvalidComponent {
        /// The component's name in the Workload.
        component: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Wasmtime refused to compile a component (its cause says why).
    #[error("component {component}: failed to compile")]
    Compile {
        /// The component's name in the Workload.
        component: String,
        /// Wasmtime's error.
        #[source]
        source: wasmtime::Error,
    },

    /// A component imports interfaces no plugin and no sibling component provides.
    #[error("component {component} imports interfaces nothing provides: {}", missing.join(", "))]
    MissingImports {
        /// The component's name in the Workload.
        component: String,
        /// The interfaces it imports that nothing provides.
        missing: Vec<String>,
    },

    /// Components of one Workload import each other in a cycle, so none can be instantiated
    /// first.
    #[error("components import each other in a cycle: {}", cycle.join(" -> "))]
    ImportCycle {
        /// The components of the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },

    /// An import of a component cannot be wired to what provides it.
    #[error("component {component}: cannot link {interface}")]
    Link {
        /// The importing component's name in the Workload.
        component: String,
        /// The import (`*` for the component as a whole).
        interface: String,
        /// Why it cannot be linked.
        #[source]
        source: wasmtime::Error,
    },

    /// The Workload as a whole is not one this host runs (its parts contradict each other).
    #[error("workload {workload}: {reason}")]
    InvalidWorkload {
        /// The Workload's id, `namespace/name`.
        workload: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Two plugins of one host have the same id.
    #[error("plugin {plugin} is registered twice")]
    DuplicatePlugin {
        /// The id both have.
        plugin: String,
    },

    /// A plugin refused a Workload (its configuration, a conflict) or failed to start.
    #[error("plugin {plugin}")]
    Plugin {
        /// The plugin's id.
        plugin: String,
        /// The plugin's error.
        #[source]
        source: wasmtime::Error,
    },

    /// A backend the workload needs cannot be reached right now; starting again later can
    /// succeed, so the host-agent retries with back-off.
    #[error("plugin {plugin}")]
    BackendUnavailable {
        /// The plugin whose backend it is.
        plugin: String,
        /// Which backend, and what its client said.
        #[source]
        source: BackendUnavailable,
    },

    /// `spec.hostInterfaces` names an interface no plugin of this host serves.
    #[error("no host plugin serves {interface} (requested by spec.hostInterfaces)")]
    UnservedInterface {
        /// The interface as the Workload names it.
        interface: String,
    },

    /// A volume is refused by the host's policy or named by a mount but not declared.
    #[error("volume {volume}: {reason}")]
    InvalidVolume {
        /// The volume's name in the Workload.
        volume: String,
        /// Why it is refused.
        reason: String,
    },

    /// A volume's directory cannot be made or opened.
    #[error("volume {volume}: cannot {action} {}", path.display())]
    Volume {
        /// The volume's name in the Workload.
        volume: String,
        /// What was tried (`create`, `open`).
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// What the filesystem said.
        #[source]
        source: wasmtime::Error,
    },

    /// The compile cache cannot be used.
    #[error("compile cache at {}", path.display())]
    Cache {
        /// The cache's directory.
        path: PathBuf,
        /// What the filesystem said.
        #[source]
        source: std::io::Error,
    },

    /// The Workload asks for more memory, instances or time than the host has left or allows.
    #[error("workload {workload} does not fit on this host: {reason}")]
    OverBudget {
        /// The Workload's id, `namespace/name`.
        workload: String,
        /// What does not fit.
        reason: String,
    },

    /// No workload of this id runs on the host.
    #[error("workload {0} is not running")]
    UnknownWorkload(String),

    /// The host itself failed at something no Workload asked for (not bad input).
    #[error("engine: {what}")]
    Engine {
        /// What the host was doing.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: wasmtime::Error,
    },
}

/// What a plugin returns (inside its `wasmtime::Error`) when a backend it needs to bind a
/// workload is unreachable: the workload fails with [`Error::BackendUnavailable`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("backend {backend} is unavailable: {reason}")]
pub struct BackendUnavailable {
    /// The backend's name (`redis`, `nats`).
    pub backend: String,
    /// What its client said, without credentials.
    pub reason: String,
}

impl Error {
    /// Whether starting the workload again later can succeed as it is.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::BackendUnavailable { .. })
    }
}

/// The runtime's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
