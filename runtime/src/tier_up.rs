//! Moving a workload from baseline code to Cranelift's: once Cranelift has compiled every
//! component that started on Winch's code, the workload is started again on the new code, as a
//! live update (requests in flight finish on the old instances, none fails). Only the version
//! that was started is moved: one that was updated or stopped meanwhile is left alone.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::task::AbortHandle;

use crate::engine::{CompiledComponent, Tier};
use crate::error::{Error, Result};
use crate::host::{Host, HostInner};
use crate::spec::WorkloadSpec;
use crate::workload::ResolvedWorkload;

/// The tier-up tasks running, so that shutdown stops them.
#[derive(Default)]
pub(crate) struct TierUps(Mutex<Vec<AbortHandle>>);

impl TierUps {
    fn add(&self, task: AbortHandle) {
        let mut tasks = self.0.lock();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    pub(crate) fn abort_all(&self) {
        self.0.lock().drain(..).for_each(|t| t.abort());
    }
}

impl ResolvedWorkload {
    /// The components running on baseline code. A service never does (see `compile_all`).
    pub(crate) fn on_baseline_code(&self) -> Vec<&str> {
        self.components
            .iter()
            .filter(|c| c.template.code.tier == Tier::Baseline)
            .map(|c| c.spec.name.as_str())
            .collect()
    }
}

impl Host {
    /// If `started` runs any baseline code, moves it to Cranelift's in the background.
    /// `spec` is what started it, with the components' bytes.
    pub(crate) fn tier_up_later(&self, spec: WorkloadSpec, started: &Arc<ResolvedWorkload>) {
        let baseline: Vec<String> = started
            .on_baseline_code()
            .into_iter()
            .map(String::from)
            .collect();
        if baseline.is_empty() || !self.0.engine.tiers_up() {
            return;
        }
        let task = tokio::spawn(tier_up(
            Arc::downgrade(&self.0),
            spec,
            Arc::downgrade(started),
            baseline,
        ));
        self.0.tier_ups.add(task.abort_handle());
    }
}

async fn tier_up(
    host: Weak<HostInner>,
    spec: WorkloadSpec,
    started: Weak<ResolvedWorkload>,
    baseline: Vec<String>,
) {
    let id = spec.id();
    let Some((engine, metrics)) = host
        .upgrade()
        .map(|h| (h.engine.clone(), h.metrics.clone()))
    else {
        return;
    };
    // Held until the update below has linked them: the engine keeps code only while it is used.
    let mut optimized = Vec::new();
    for component in spec
        .components
        .iter()
        .filter(|c| baseline.contains(&c.name))
    {
        // Replaced or stopped meanwhile (a developer's next edit): its code is not wanted.
        if started.strong_count() == 0 {
            return;
        }
        let (engine, name, wasm) = (
            engine.clone(),
            component.name.clone(),
            component.wasm.clone(),
        );
        match compile_off_runtime(move || engine.optimize(&name, &wasm)).await {
            Ok(compiled) => {
                metrics.record_compile(compiled.source, compiled.compile_time);
                optimized.push(compiled);
            }
            Err(err) => {
                tracing::warn!(workload = %id, component = %component.name, err = %format!("{err:#}"), "Cranelift could not compile it; it stays on baseline code");
                return;
            }
        }
    }
    drop(engine);
    let Some(host) = host.upgrade() else {
        return;
    };
    match Host(host).apply(spec, Some(&started)).await {
        Ok(Some(_)) => {
            let took: Vec<String> = optimized
                .iter()
                .map(|c| format!("{:.1?}", c.compile_time))
                .collect();
            tracing::info!(workload = %id, components = ?baseline, compile = ?took, "workload moved to optimized code");
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(workload = %id, err = %format!("{err:#}"), "could not move the workload to optimized code; it stays on baseline code");
        }
    }
}

/// Runs a compile on a thread of its own: unlike `spawn_blocking`, a compile still running at
/// shutdown does not hold up the runtime's exit.
async fn compile_off_runtime(
    compile: impl FnOnce() -> Result<CompiledComponent> + Send + 'static,
) -> Result<CompiledComponent> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("weft-tier-up".into())
        .spawn(move || {
            let _ = tx.send(compile());
        })
        .map_err(|e| Error::Engine {
            what: "cannot start the tier-up compile",
            source: e.into(),
        })?;
    rx.await.map_err(|e| Error::Engine {
        what: "the tier-up compile ended without a result",
        source: e.into(),
    })?
}
