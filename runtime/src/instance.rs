//! A component ready to run: its instance template, what each of its stores is given, and
//! [`ComponentRuntime::invoke`], the one way into a guest.

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use wasmtime::Store;
use wasmtime::component::InstancePre;
use wasmtime_wasi::WasiCtxBuilder;

use crate::component_info::ComponentInfo;
use crate::limiter::Limiter;
use crate::loopback::{Loopback, NetState};
use crate::metrics::{RuntimeMetrics, Series};
use crate::shared_pool::SharedPool;
use crate::spec::ComponentSpec;
use crate::stdio::{LogStream, Stream};
use crate::store::{Ctx, Identity, Slots, StateFactory};
use crate::template::Template;
use crate::volumes::Volumes;
use crate::warm_pool::WarmPool;

pub use crate::invoke::{Call, Failure, Guest};

/// Whether a component answers invocations (each bounded by its timeout) or is the workload's
/// long-running service (its `run` has no deadline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Answers invocations, each within its timeout.
    Component,
    /// The workload's long-running service.
    Service,
}

/// Everything needed to instantiate one component again and again, prepared once.
pub struct ComponentRuntime {
    /// Whose component it is.
    pub identity: Identity,
    /// What it was given (its bytes emptied once compiled).
    pub spec: ComponentSpec,
    /// What it imports and exports.
    pub info: Arc<ComponentInfo>,
    /// Whether it answers invocations or is the service.
    pub role: Role,
    pub(crate) template: Arc<Template>,
    pub(crate) volumes: Arc<Volumes>,
    /// One per plugin bound to the component: each makes that plugin's state in a new store.
    pub(crate) states: Vec<StateFactory>,
    /// The workload's own loopback network, shared by its components and service.
    pub(crate) loopback: Loopback,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) metrics: RuntimeMetrics,
    /// Its metric series, looked up on first use: an idle component has none.
    series: OnceLock<Arc<Series>>,
    /// Warm instances, each serving one call at a time, when the component has a pool (never
    /// for the service).
    pub(crate) pool: Option<WarmPool>,
    /// Cancelled when its workload stops: every call still running ends with it.
    pub(crate) stopped: CancellationToken,
    /// Instances that serve up to `pool.maxConcurrency` calls at once, each in a task running
    /// its event loop, when the component's exports are `async` (WASI 0.3).
    pub(crate) shared: Option<SharedPool>,
}

impl ComponentRuntime {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        identity: Identity,
        spec: ComponentSpec,
        role: Role,
        template: Arc<Template>,
        volumes: Arc<Volumes>,
        states: Vec<StateFactory>,
        loopback: Loopback,
        metrics: RuntimeMetrics,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(spec.limits.max_concurrency as usize));
        let info = template.code.info.clone();
        let (mut pool, mut shared) = (None, None);
        match (&spec.pool, role) {
            // A WASI 0.3 instance keeps its event loop running between calls (a body may still
            // be streaming), even when it takes one call at a time.
            (Some(p), Role::Component) if info.concurrent => {
                shared = Some(SharedPool::new(p.clone()));
            }
            (Some(p), Role::Component) => pool = Some(WarmPool::new(p.clone())),
            _ => {}
        }
        Self {
            identity,
            spec,
            info,
            role,
            template,
            volumes,
            states,
            loopback,
            slots,
            metrics,
            series: OnceLock::new(),
            pool,
            shared,
            stopped: CancellationToken::new(),
        }
    }

    /// Ends every call still running (their stores dropped, shared instances too) and refuses
    /// new ones: the workload stopped, and nothing of it may outlive it.
    pub(crate) fn stop(&self) {
        self.stopped.cancel();
        if let Some(shared) = &self.shared {
            shared.stop();
        }
    }

    /// Drops the component's metric series once its workload has stopped.
    pub(crate) fn forget_metrics(&self) {
        let series = self.series.get().map(|s| &**s);
        self.metrics.forget(&self.identity, series);
    }

    pub(crate) fn series(&self) -> &Arc<Series> {
        self.series.get_or_init(|| {
            let pooled = self.pool.is_some() || self.shared.is_some();
            Arc::new(self.metrics.series(&self.identity, pooled))
        })
    }

    /// Its linked template, for plugins that look up exports.
    pub fn instance_pre(&self) -> &InstancePre<Ctx> {
        &self.template.pre
    }

    /// Drops warm instances idle past the pool's idle timeout.
    pub fn sweep_idle(&self) {
        let now = std::time::Instant::now();
        if let Some(pool) = &self.pool {
            self.series().set_warm(pool.sweep(now));
        }
        if let Some(shared) = &self.shared {
            self.series().set_warm(shared.sweep(now));
        }
    }

    /// A fresh store for one instance: the component's environment, mounts, plugin states and
    /// memory limit. Every epoch tick the guest yields to the executor, so a busy guest never
    /// starves others and its deadline (see `invoke` and `deadlines`) can end it.
    pub(crate) fn new_store(&self) -> Result<Store<Ctx>, Failure> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&self.spec.env)
            .stdout(LogStream::new(self.identity.clone(), Stream::Stdout))
            .stderr(LogStream::new(self.identity.clone(), Stream::Stderr));
        self.volumes
            .preopen(&mut wasi, &self.spec.mounts)
            .map_err(|e| Failure::Host(e.to_string()))?;
        self.loopback.apply(&mut wasi);
        let ctx = Ctx::new(
            self.identity.clone(),
            wasi.build(),
            Limiter::new(self.spec.limits.memory_bytes),
            NetState::new(self.loopback.clone(), self.role),
            Slots::from_factories(&self.states),
        );
        let mut store = Store::new(self.template.pre.engine(), ctx);
        store.limiter(|ctx| &mut ctx.limiter);
        store.epoch_deadline_callback(crate::deadlines::on_epoch);
        store.set_epoch_deadline(1);
        Ok(store)
    }
}
