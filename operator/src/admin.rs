//! What the operator serves on `--metrics-listen` (the server is `weft_daemon::admin`):
//!
//! - `/healthz` answers 200 while the process serves: a leader that cannot renew its Lease exits
//!   rather than reporting unhealthy.
//! - `/readyz` answers 200 with `leader` (controllers running) or `standby` (healthy, waiting for
//!   the Lease), and 503 `starting` until the API server answered the first time. Standbys are
//!   ready so that a rollout is not blocked by the replicas that are not leading.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use prometheus_client::registry::Registry;
use weft_daemon::admin::Endpoints;

use crate::metrics::Metrics;

/// What this replica is doing, as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    Starting = 0,
    Standby = 1,
    Leader = 2,
}

/// The replica's role, shared between the leader election and the admin server.
#[derive(Debug, Default)]
pub struct Health {
    role: AtomicU8,
}

impl Health {
    pub fn set(&self, role: Role) {
        self.role.store(role as u8, Ordering::Relaxed);
    }

    pub fn role(&self) -> Role {
        match self.role.load(Ordering::Relaxed) {
            1 => Role::Standby,
            2 => Role::Leader,
            _ => Role::Starting,
        }
    }
}

/// The operator's admin endpoints.
pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl Endpoints for Admin {
    fn registry(&self) -> &Registry {
        &self.metrics.registry
    }

    fn readiness(&self) -> (bool, &'static str) {
        match self.health.role() {
            Role::Leader => (true, "leader"),
            Role::Standby => (true, "standby"),
            Role::Starting => (false, "starting"),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{Method, StatusCode};
    use weft_daemon::admin::respond;

    use super::*;

    #[tokio::test]
    async fn ready_as_leader_or_standby() {
        let admin = Admin {
            metrics: Arc::default(),
            health: Arc::default(),
        };
        let readyz = async || {
            let reply = respond(
                &Method::GET,
                "/readyz",
                "127.0.0.1:1".parse().unwrap(),
                &admin,
            )
            .await;
            (reply.status, reply.body)
        };
        assert_eq!(
            readyz().await,
            (StatusCode::SERVICE_UNAVAILABLE, "starting\n".into())
        );
        admin.health.set(Role::Standby);
        assert_eq!(readyz().await, (StatusCode::OK, "standby\n".into()));
        admin.health.set(Role::Leader);
        assert_eq!(readyz().await, (StatusCode::OK, "leader\n".into()));
    }
}
