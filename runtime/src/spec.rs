//! What the runtime is asked to run: a workload described without any Kubernetes types, so the
//! runtime can be embedded anywhere. The host-agent translates a `Workload` manifest into this.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weft_api::{WitInterface, limit_defaults};

/// A workload: components that answer invocations, at most one long-running service, the host
/// interfaces they need and the volumes they mount.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    /// The namespace, which scopes what the workload may reach (its buckets, subjects, quotas).
    pub namespace: String,
    /// The name, unique in its namespace on one host.
    pub name: String,
    /// The components answering invocations (HTTP requests, messages, linked calls).
    pub components: Vec<ComponentSpec>,
    /// The long-running component, if any.
    pub service: Option<ServiceSpec>,
    /// The host interfaces the workload asks for, each with the configuration it gives the
    /// plugin serving it (HTTP hosts, buckets, subjects).
    pub host_interfaces: Vec<InterfaceConfig>,
    /// The volumes its components may mount.
    pub volumes: Vec<VolumeSpec>,
    /// Workloads of one group (replicas of one WorkloadDeployment) share their HTTP hosts, and
    /// requests are balanced among them. `None`: the workload claims its hosts alone.
    pub http_group: Option<String>,
}

impl WorkloadSpec {
    /// The group whose workloads share this workload's HTTP hosts.
    pub fn http_group(&self) -> String {
        self.http_group.clone().unwrap_or_else(|| self.id())
    }

    /// `namespace/name`, the key the host knows a workload by.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The configuration a workload gives to a host interface, if it lists it.
    pub fn interface_config(&self, namespace: &str, package: &str) -> Option<&InterfaceConfig> {
        self.host_interfaces
            .iter()
            .find(|i| i.interface.namespace == namespace && i.interface.package == package)
    }
}

/// One component: its bytes and everything it is given.
#[derive(Clone, Debug)]
pub struct ComponentSpec {
    /// The name, unique in its workload; siblings link by it.
    pub name: String,
    /// The component binary (already pulled and verified by the caller). A running workload
    /// keeps its compiled code, shared by digest, not these bytes: they are empty in
    /// [`ResolvedWorkload::spec`](crate::workload::ResolvedWorkload).
    pub wasm: Arc<[u8]>,
    /// The digest reference the image resolved to (`registry/repo@sha256:…`).
    pub image_id: Option<String>,
    /// wasi:config values for this component (they override the interface-level ones).
    pub config: BTreeMap<String, String>,
    /// The wasi:cli environment variables, in order.
    pub env: Vec<(String, String)>,
    /// The volumes it mounts.
    pub mounts: Vec<MountSpec>,
    /// What one instance may use.
    pub limits: Limits,
    /// Hosts outgoing HTTP may reach; empty means none.
    pub allowed_hosts: Vec<String>,
    /// Warm instances kept between invocations; `None`: a fresh instance for every one.
    pub pool: Option<PoolSpec>,
}

impl ComponentSpec {
    /// A component with default limits and nothing granted.
    pub fn new(name: impl Into<String>, wasm: impl Into<Arc<[u8]>>) -> Self {
        Self {
            name: name.into(),
            wasm: wasm.into(),
            image_id: None,
            config: BTreeMap::new(),
            env: Vec::new(),
            mounts: Vec::new(),
            limits: Limits::default(),
            allowed_hosts: Vec::new(),
            pool: None,
        }
    }
}

/// A component's warm instance pool. What one invocation leaves in an instance, the next on that
/// instance sees: that is the component's choice. An instance whose invocation failed in any way
/// (trap, memory, timeout, cancellation) is never reused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    /// Most idle instances kept (at most `limits.max_concurrency`, which the host reserves
    /// memory for, so warm instances are within the budget).
    pub size: u32,
    /// Invocations one instance serves before it is retired.
    pub max_invocations: u32,
    /// How long an idle instance is kept.
    pub idle_timeout: Duration,
    /// Calls one instance serves at once, where the component's exports are `async` (WASI
    /// 0.3); a WASI 0.2 instance always serves one.
    pub max_concurrency: u32,
}

/// A volume mounted into a component as a preopened directory.
#[derive(Clone, Debug)]
pub struct MountSpec {
    /// The workload's volume mounted.
    pub volume: String,
    /// Where the guest sees it (an absolute guest path).
    pub path: String,
    /// Whether the guest may only read it.
    pub read_only: bool,
}

/// Per-component resource limits. Every limit is enforced: unenforced limits are how hosts
/// run out of memory. The host reserves `memory_bytes × max_concurrency` of its memory budget
/// and `max_concurrency` of its instance slots for the component while it runs.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Memory per instance (all its linear memories and tables together), in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time one invocation may take, whether computing or waiting.
    pub timeout: Duration,
    /// Invocations running at once; further ones wait for a slot (up to half of `timeout`).
    pub max_concurrency: u32,
    /// The largest HTTP request body the component accepts, in bytes.
    pub max_request_body: u64,
}

impl Limits {
    /// [`Limits::memory_bytes`] when a Workload sets none.
    pub const DEFAULT_MEMORY_BYTES: u64 = limit_defaults::MEMORY_BYTES;
    /// [`Limits::timeout`] when a Workload sets none.
    pub const DEFAULT_TIMEOUT: Duration = limit_defaults::TIMEOUT;
    /// [`Limits::max_concurrency`] when a Workload sets none.
    pub const DEFAULT_MAX_CONCURRENCY: u32 = limit_defaults::MAX_CONCURRENCY;
    /// [`Limits::max_request_body`] when a Workload sets none.
    pub const DEFAULT_MAX_REQUEST_BODY: u64 = limit_defaults::MAX_REQUEST_BODY_BYTES;

    /// What the host sets aside for the component: the memory of every instance it may run at
    /// once.
    pub fn reserved_memory(&self) -> u64 {
        self.memory_bytes
            .saturating_mul(u64::from(self.max_concurrency))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            timeout: Self::DEFAULT_TIMEOUT,
            max_concurrency: Self::DEFAULT_MAX_CONCURRENCY,
            max_request_body: Self::DEFAULT_MAX_REQUEST_BODY,
        }
    }
}

/// The long-running component of a workload.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    /// The component; it exports `wasi:cli/run`.
    pub component: ComponentSpec,
    /// Restarts allowed after the service exits or traps; `None` means without end.
    pub max_restarts: Option<u32>,
}

/// A host interface a workload asks for, with the configuration it gives the plugin.
#[derive(Clone, Debug)]
pub struct InterfaceConfig {
    /// The interface (`wasi:keyvalue/store@0.2.0-draft`); a version is matched semver-wise.
    pub interface: WitInterface,
    /// Tells apart several entries of one package (two buckets), as guests name them.
    pub name: Option<String>,
    /// The plugin's configuration (`host`, `bucket`, `subscriptions`, `backend`, ...).
    pub config: BTreeMap<String, String>,
}

impl InterfaceConfig {
    /// An unnamed entry for `interface` with the given configuration.
    pub fn new<K: Into<String>, V: Into<String>>(
        interface: WitInterface,
        config: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            interface,
            name: None,
            config: config
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// A volume of a workload, which its components may mount.
#[derive(Clone, Debug)]
pub struct VolumeSpec {
    /// The name mounts refer to.
    pub name: String,
    /// What the volume is.
    pub source: VolumeSource,
}

/// What a volume is on the host.
#[derive(Clone, Debug)]
pub enum VolumeSource {
    /// An empty directory that lives as long as the workload runs on the host; past
    /// `size_limit` bytes components get it read-only.
    EmptyDir {
        /// Bytes its files may take before it turns read-only; `None`: no limit but the
        /// host's.
        size_limit: Option<u64>,
    },
    /// A directory of the host.
    HostPath(PathBuf),
}
