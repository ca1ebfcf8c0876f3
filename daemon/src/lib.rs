//! What Weft's two daemons, the operator and the host-agent, share, written once: the
//! Kubernetes API client, waiting on its caches, the timing of the Leases they hold, the admin
//! server, shutdown signals and logging.

pub mod admin;
pub mod cache;
pub mod client;
pub mod lease_timing;
pub mod signals;
pub mod telemetry;
