//! Weft's host runtime: runs WebAssembly components on Wasmtime, with host plugins giving them
//! their capabilities. It knows nothing of Kubernetes; the host-agent drives it.
//!
//! ```text
//! Engine ──► Host ──► start_workload(WorkloadSpec)
//!              │          compile (cached) → bind plugins → link siblings → InstancePre
//!              └─ plugins: wasi, wasi:http (router + server), wasi:config, wasi:logging
//! ```

pub mod budget;
mod compile_cache;
pub mod component_info;
mod deadlines;
mod digest;
pub mod egress;
pub mod engine;
pub mod error;
pub mod host;
pub mod http_server;
mod id_locks;
pub mod instance;
mod invoke;
mod limiter;
mod linking;
mod loopback;
pub mod metrics;
pub mod plugin;
pub mod plugins;
pub mod router;
mod service;
mod shared;
mod shared_pool;
pub mod spec;
pub mod status;
mod stdio;
pub mod store;
pub mod template;
mod trace_context;
pub mod volumes;
mod warm_pool;
pub mod workload;

pub use digest::sha256;
pub use egress::{EgressRules, Refused};
pub use engine::{CodeSource, Engine, EngineBuilder};
pub use error::{BackendUnavailable, Error, Result};
pub use host::{Host, HostBuilder};
pub use instance::{Failure, Guest};
pub use metrics::RuntimeMetrics;
pub use plugin::{HostPlugin, WitWorld};
pub use spec::*;
pub use status::*;
pub use store::{Ctx, PluginView, StateFactory};
