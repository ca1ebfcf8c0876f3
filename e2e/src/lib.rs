//! The end-to-end harness: real third-party servers (etcd, kube-apiserver, an OCI registry, NATS, Redis),
//! built by `scripts/ensure-tools.sh`, and Weft's own binaries as processes, wired together the
//! way a cluster would be. Used by the tests in `e2e/tests`, by `make dev-cluster`, and by the
//! host-agent's registry tests. Harness code panics with a readable message on failure.

pub mod cluster;
pub mod containerd;
pub mod control_plane;
pub mod jaeger;
pub mod leftovers;
pub mod nats;
pub mod node;
pub mod partition;
pub mod process;
pub mod redis;
pub mod registry;

pub use cluster::{Agent, Cluster};
pub use control_plane::ControlPlane;
pub use jaeger::JaegerServer;
pub use nats::NatsServer;
pub use node::Node;
pub use redis::RedisServer;
pub use registry::Registry;
