//! Shutdown: SIGTERM (how Kubernetes stops a Pod) or Ctrl-C.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signal handlers, installed when the daemon starts so that a failure to install them
/// stops it there rather than later.
pub struct Shutdown {
    terminate: Signal,
}

impl Shutdown {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves on the first SIGTERM or Ctrl-C.
    pub async fn requested(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => tracing::info!("SIGTERM received; shutting down"),
            Ok(()) = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received; shutting down"),
        }
    }
}
