//! What the host-agent serves on its admin port (the server is `weft_daemon::admin`):
//! `/metrics`, `/healthz`, `/readyz` once the host serves what it was asked to, and, to a
//! client on the host itself only, `/workloads` (the status of every tenant's workload, as
//! JSON, including those still pulling).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::registry::Registry;
use weft_daemon::admin::{Endpoints, Reply};

use crate::launcher::Launcher;

pub struct Admin {
    pub registry: Registry,
    pub launcher: Arc<Launcher>,
    /// Set once the host serves what it was asked to.
    pub ready: AtomicBool,
}

impl Admin {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

impl Endpoints for Admin {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn readiness(&self) -> (bool, &'static str) {
        match self.ready.load(Ordering::Relaxed) {
            true => (true, "ok"),
            false => (false, "not ready"),
        }
    }

    async fn private(&self, path: &str) -> Option<Reply> {
        if path != "/workloads" {
            return None;
        }
        let statuses = self.launcher.statuses().await;
        Some(Reply::json(
            serde_json::to_string_pretty(&statuses).unwrap_or_default(),
        ))
    }
}
