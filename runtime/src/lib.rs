//! Weft's host runtime: runs WebAssembly components on Wasmtime, with host plugins giving them
//! their capabilities. It knows nothing of Kubernetes: the Weft host-agent drives it, and so
//! can any program that wants to run Workloads of its own.
//!
//! ```text
//! Engine ──► Host ──► start_workload(WorkloadSpec)
//!              │          compile (cached) → bind plugins → link siblings → InstancePre
//!              └─ plugins: wasi, wasi:http (router + server), wasi:config, wasi:logging,
//!                          wasi:keyvalue, wasi:blobstore, wasmcloud:messaging
//! ```
//!
//! # Embedding
//!
//! An [`Engine`] compiles components (and caches what it compiled), a [`Host`] runs
//! Workloads on it with the [`HostPlugin`]s it was built with, and [`http_server::serve`]
//! answers HTTP for the Workloads that export `wasi:http/incoming-handler`, routed by the
//! `Host` header to the Workload claiming it:
//!
//! ```
//! use weft_runtime::plugins::{Backends, DefaultPlugins};
//! use weft_runtime::{ComponentSpec, EgressRules, Engine, Host, InterfaceConfig, WorkloadSpec};
//! # const WASM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/build/hello-http.wasm");
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! // Guests reach no address of this machine unless allowed; the lone Workload answers any
//! // Host header.
//! let plugins = DefaultPlugins::new(EgressRules::default(), true, Backends::default());
//! let host = Host::builder()
//!     .engine(Engine::builder().build()?)
//!     .plugins(plugins.all)?
//!     .build()?;
//! host.start().await?;
//!
//! let wasm = std::fs::read(WASM)?; // any wasi:http component, WASI 0.2 or 0.3
//! let status = host
//!     .start_workload(WorkloadSpec {
//!         namespace: "demo".into(),
//!         name: "hello".into(),
//!         components: vec![ComponentSpec::new("hello", wasm)],
//!         host_interfaces: vec![InterfaceConfig::new(
//!             "wasi:http/incoming-handler@0.2.0".parse()?,
//!             [("host", "hello.localhost")],
//!         )],
//!         service: None,
//!         volumes: Vec::new(),
//!         http_group: None,
//!     })
//!     .await?;
//! assert!(status.ready());
//!
//! let listener = weft_runtime::http_server::bind("127.0.0.1:0".parse()?).await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(weft_runtime::http_server::serve(
//!     listener,
//!     plugins.http,
//!     Default::default(),
//!     async { stopped.await.ok(); },
//! ));
//!
//! // One request, as any HTTP client would send it.
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let mut conn = tokio::net::TcpStream::connect(addr).await?;
//! conn.write_all(b"GET / HTTP/1.1\r\nhost: hello.localhost\r\nconnection: close\r\n\r\n").await?;
//! let mut response = String::new();
//! conn.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 200"), "{response}");
//! assert!(response.contains("Hello from Weft!\n"), "{response}");
//!
//! stop.send(()).ok();
//! server.await??;
//! host.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! Each plugin beyond `wasi` and `wasi:http`, and each production backend, is a Cargo feature,
//! all on by default: `config`, `logging`, `keyvalue`, `blobstore`, `messaging`, and the
//! backends `redis` (key-value) and `nats` (key-value, blobstore and messaging on JetStream).
//! An embedder leaves out what it does not offer with `default-features = false`.

#![deny(missing_docs)]

mod budget;
mod compile_cache;
mod component_info;
mod deadlines;
mod digest;
mod egress;
mod engine;
mod error;
mod host;
pub mod http_server;
mod id_locks;
mod instance;
mod invoke;
mod limiter;
mod linking;
mod loopback;
mod metrics;
mod plugin;
pub mod plugins;
mod router;
mod service;
mod shared;
mod shared_pool;
mod spec;
mod status;
mod stdio;
mod store;
mod template;
mod tier_up;
mod trace_context;
mod volumes;
mod warm_pool;
mod workload;

/// The tracing target of guest output: `wasi:logging` calls and the lines a guest writes to
/// stdout and stderr, each with its `workload` and `component`.
pub const GUEST_LOG: &str = "weft::guest";

pub use budget::{Budget, Bytes, Reservation, default_memory_budget};
pub use component_info::ComponentInfo;
pub use digest::sha256;
pub use egress::{EgressRules, Refused};
pub use engine::{CodeSource, CompiledComponent, Compiler, Engine, EngineBuilder, Tier};
pub use error::{BackendUnavailable, Error, Result};
pub use host::{Host, HostBuilder};
pub use instance::{Call, ComponentRuntime, Failure, Guest, Role};
pub use metrics::RuntimeMetrics;
pub use plugin::{ComponentBinding, HostPlugin, WitWorld};
pub use router::{HostTaken, Route, Router};
pub use spec::*;
pub use status::*;
pub use store::{Ctx, Identity, PluginView, StateFactory};
pub use weft_api::error_chain;
pub use workload::ResolvedWorkload;
