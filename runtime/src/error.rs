//! The runtime's error type. Messages are written for people: they end up in logs and in a
//! Workload's status, so each names the component or interface it is about.

use std::path::PathBuf;

/// Everything that can go wrong while starting, running or stopping a workload.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("component {component}: {reason}")]
    InvalidComponent { component: String, reason: String },

    #[error("component {component}: failed to compile: {reason}")]
    Compile { component: String, reason: String },

    #[error("component {component} imports interfaces nothing provides: {}", missing.join(", "))]
    MissingImports {
        component: String,
        missing: Vec<String>,
    },

    #[error("components import each other in a cycle: {}", cycle.join(" -> "))]
    ImportCycle { cycle: Vec<String> },

    #[error("component {component}: cannot link {interface}: {reason}")]
    Link {
        component: String,
        interface: String,
        reason: String,
    },

    #[error("workload {workload}: {reason}")]
    InvalidWorkload { workload: String, reason: String },

    #[error("plugin {plugin}: {reason}")]
    Plugin { plugin: String, reason: String },

    /// A backend the workload needs cannot be reached right now; starting again later can
    /// succeed, so the host-agent retries with back-off.
    #[error("plugin {plugin}: {source}")]
    BackendUnavailable {
        plugin: String,
        #[source]
        source: BackendUnavailable,
    },

    #[error("no host plugin serves {interface} (requested by spec.hostInterfaces)")]
    UnservedInterface { interface: String },

    #[error("volume {volume}: {reason}")]
    Volume { volume: String, reason: String },

    #[error("compile cache at {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("workload {workload} does not fit on this host: {reason}")]
    OverBudget { workload: String, reason: String },

    #[error("workload {0} is not running")]
    UnknownWorkload(String),

    #[error("engine: {0}")]
    Engine(String),
}

/// What a plugin returns (inside its `wasmtime::Error`) when a backend it needs to bind a
/// workload is unreachable: the workload fails with [`Error::BackendUnavailable`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("backend {backend} is unavailable: {reason}")]
pub struct BackendUnavailable {
    pub backend: String,
    pub reason: String,
}

impl Error {
    /// Whether starting the workload again later can succeed as it is.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::BackendUnavailable { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Renders a wasmtime error with its whole cause chain on one line.
pub(crate) fn chain(err: &wasmtime::Error) -> String {
    format!("{err:#}")
}
