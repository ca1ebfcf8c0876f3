//! A component ready to run: its `InstancePre`, and a fresh, limited store for each invocation.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{InstancePre, ResourceTable};
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::component_info::ComponentInfo;
use crate::egress::EgressPolicy;
use crate::limiter::Limiter;
use crate::sockets::{self, Role, ServicePorts};
use crate::spec::ComponentSpec;
use crate::stdio::{LogStream, Stream};
use crate::store::{ConfigValues, Ctx, Identity};
use crate::volumes::Volumes;

/// Everything needed to instantiate one component again and again, prepared once.
pub struct ComponentRuntime {
    pub identity: Identity,
    pub spec: ComponentSpec,
    pub info: ComponentInfo,
    pub(crate) pre: InstancePre<Ctx>,
    pub(crate) role: Role,
    pub(crate) config: Arc<ConfigValues>,
    pub(crate) egress: EgressPolicy,
    pub(crate) volumes: Arc<Volumes>,
    pub(crate) ports: ServicePorts,
    slots: Option<Arc<Semaphore>>,
}

/// Why an invocation failed, in the words status and logs use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    MemoryLimit,
    Trap(String),
    Busy,
    Host(String),
}

impl Failure {
    /// The `outcome` label of the invocation metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::MemoryLimit => "memory_limit",
            Failure::Trap(_) => "trap",
            Failure::Busy => "busy",
            Failure::Host(_) => "error",
        }
    }

    /// Sorts a failed call into timeout, memory or trap.
    pub fn classify(err: &wasmtime::Error, memory_refused: bool) -> Self {
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Failure::Timeout,
            _ if memory_refused => Failure::MemoryLimit,
            Some(_) => Failure::Trap(format!("{err:#}")),
            None => Failure::Host(format!("{err:#}")),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => f.write_str("invocation exceeded its timeout"),
            Failure::MemoryLimit => f.write_str("component exceeded its memory limit"),
            Failure::Trap(msg) => write!(f, "component trapped: {msg}"),
            Failure::Busy => f.write_str("component is at its concurrency limit"),
            Failure::Host(msg) => write!(f, "host error: {msg}"),
        }
    }
}

impl ComponentRuntime {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        identity: Identity,
        spec: ComponentSpec,
        info: ComponentInfo,
        pre: InstancePre<Ctx>,
        role: Role,
        config: Arc<ConfigValues>,
        volumes: Arc<Volumes>,
        ports: ServicePorts,
    ) -> Self {
        let slots = spec
            .limits
            .max_concurrency
            .map(|n| Arc::new(Semaphore::new(n as usize)));
        let egress = EgressPolicy::new(&spec.allowed_hosts);
        Self {
            identity,
            spec,
            info,
            pre,
            role,
            config,
            egress,
            volumes,
            ports,
            slots,
        }
    }

    pub fn instance_pre(&self) -> &InstancePre<Ctx> {
        &self.pre
    }

    /// Waits for a concurrency slot for at most half the invocation timeout, so an invocation
    /// that gets one still has time to run.
    pub async fn acquire(&self) -> Result<Option<OwnedSemaphorePermit>, Failure> {
        let Some(slots) = &self.slots else {
            return Ok(None);
        };
        let wait = self.spec.limits.timeout / 2;
        match tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(Failure::Busy),
        }
    }

    /// A fresh store for one invocation: the component's environment, mounts, sockets policy,
    /// memory limit and, unless it is a service, a deadline.
    pub fn new_store(&self) -> Result<Store<Ctx>, Failure> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&self.spec.env)
            .stdout(LogStream::new(self.identity.clone(), Stream::Stdout))
            .stderr(LogStream::new(self.identity.clone(), Stream::Stderr));
        self.volumes
            .preopen(&mut wasi, &self.spec.mounts)
            .map_err(|e| Failure::Host(e.to_string()))?;
        sockets::apply(&mut wasi, self.role, &self.ports);

        let ctx = Ctx {
            identity: self.identity.clone(),
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            egress: self.egress.clone(),
            config: self.config.clone(),
            limiter: Limiter::new(self.spec.limits.memory_bytes),
        };
        let mut store = Store::new(self.pre.engine(), ctx);
        store.limiter(|ctx| &mut ctx.limiter);
        // Every epoch tick the guest yields to the executor, so a busy guest never starves
        // others; past its deadline an invocation is interrupted.
        let deadline = match self.role {
            Role::Service => None,
            Role::Component => Some(Instant::now() + self.spec.limits.timeout),
        };
        store.epoch_deadline_callback(move |_| match deadline {
            Some(deadline) if Instant::now() >= deadline => Ok(UpdateDeadline::Interrupt),
            _ => Ok(UpdateDeadline::Yield(1)),
        });
        store.set_epoch_deadline(1);
        Ok(store)
    }
}
