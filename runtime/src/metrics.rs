//! Runtime metrics in Prometheus form: invocations by outcome, their duration, instantiation
//! time, active instances, compilations and service restarts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::engine::CodeSource;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::Identity;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    workload: String,
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InvocationLabels {
    workload: String,
    component: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CompileLabels {
    source: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to ~26 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 20))
}

/// Cheap to clone; every clone records into the same series.
#[derive(Clone)]
pub struct RuntimeMetrics(Arc<Inner>);

struct Inner {
    invocations: Family<InvocationLabels, Counter>,
    duration: HistogramFamily<ComponentLabels>,
    instantiation: HistogramFamily<ComponentLabels>,
    active: Family<ComponentLabels, Gauge>,
    warm: Family<ComponentLabels, Gauge>,
    queued: Family<ComponentLabels, Gauge>,
    compilations: Family<CompileLabels, Counter>,
    compile_time: Histogram,
    restarts: Family<ComponentLabels, Counter>,
}

impl Default for RuntimeMetrics {
    fn default() -> Self {
        Self(Arc::new(Inner {
            invocations: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            instantiation: Family::new_with_constructor(latency_histogram),
            active: Family::default(),
            warm: Family::default(),
            queued: Family::default(),
            compilations: Family::default(),
            compile_time: latency_histogram(),
            restarts: Family::default(),
        }))
    }
}

fn labels(id: &Identity) -> ComponentLabels {
    ComponentLabels {
        workload: id.workload.to_string(),
        component: id.component.to_string(),
    }
}

impl RuntimeMetrics {
    /// Registers every series under the `weft_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let m = &self.0;
        registry.register(
            "weft_invocations",
            "Component invocations by outcome (ok, trap, timeout, memory_limit, busy, error)",
            m.invocations.clone(),
        );
        registry.register(
            "weft_invocation_duration_seconds",
            "Time from request to the end of the guest's work",
            m.duration.clone(),
        );
        registry.register(
            "weft_instantiation_duration_seconds",
            "Time to instantiate a component for one invocation",
            m.instantiation.clone(),
        );
        registry.register(
            "weft_active_instances",
            "Component instances alive now",
            m.active.clone(),
        );
        registry.register(
            "weft_warm_instances",
            "Idle instances kept in components' warm pools",
            m.warm.clone(),
        );
        registry.register(
            "weft_queued_invocations",
            "Invocations waiting for a concurrency slot",
            m.queued.clone(),
        );
        registry.register(
            "weft_compilations",
            "Components made ready, by source (compiler, cache on disk, or memory: already loaded for another workload)",
            m.compilations.clone(),
        );
        registry.register(
            "weft_compile_duration_seconds",
            "Time to compile a component or load it from the cache",
            m.compile_time.clone(),
        );
        registry.register(
            "weft_service_restarts",
            "Restarts of long-running services",
            m.restarts.clone(),
        );
    }

    /// Only real loads count in the duration; code found in memory took no time worth a bucket.
    pub(crate) fn record_compile(&self, source: CodeSource, took: Duration) {
        self.0
            .compilations
            .get_or_create(&CompileLabels {
                source: source.label().into(),
            })
            .inc();
        if source != CodeSource::Memory {
            self.0.compile_time.observe(took.as_secs_f64());
        }
    }

    /// One component's series, looked up once (when it first runs): after that an invocation
    /// records without hashing labels or allocating.
    /// The warm-instance gauge exists only for a component with a pool.
    pub(crate) fn series(&self, id: &Identity, pooled: bool) -> Series {
        let labels = labels(id);
        let m = &self.0;
        Series {
            metrics: self.clone(),
            duration: m.duration.get_or_create(&labels).clone(),
            instantiation: m.instantiation.get_or_create(&labels).clone(),
            active: m.active.get_or_create(&labels).clone(),
            warm: pooled.then(|| m.warm.get_or_create(&labels).clone()),
            queued: m.queued.get_or_create(&labels).clone(),
            ok: m.invocations.get_or_create(&labels.outcome("ok")).clone(),
            labels,
            forgotten: AtomicBool::new(false),
        }
    }

    /// Drops a stopped component's series: workloads that come and go under new names must not
    /// grow the agent's memory (or its `/metrics`) without bound. An invocation still finishing
    /// records nowhere instead of bringing a series back.
    pub(crate) fn forget(&self, id: &Identity, series: Option<&Series>) {
        if let Some(series) = series {
            series.forgotten.store(true, Ordering::Relaxed);
        }
        let labels = labels(id);
        let m = &self.0;
        m.duration.remove(&labels);
        m.instantiation.remove(&labels);
        m.active.remove(&labels);
        m.warm.remove(&labels);
        m.queued.remove(&labels);
        m.restarts.remove(&labels);
        for outcome in OUTCOMES {
            m.invocations.remove(&labels.outcome(outcome));
        }
    }
}

/// Every `outcome` an invocation can have (see `Failure::label`).
pub(crate) const OUTCOMES: [&str; 7] = [
    "ok",
    "timeout",
    "memory_limit",
    "trap",
    "busy",
    "overloaded",
    "error",
];

impl ComponentLabels {
    fn outcome(&self, outcome: &str) -> InvocationLabels {
        InvocationLabels {
            workload: self.workload.clone(),
            component: self.component.clone(),
            outcome: outcome.into(),
        }
    }
}

/// One component's series; see [`RuntimeMetrics::series`].
pub(crate) struct Series {
    metrics: RuntimeMetrics,
    labels: ComponentLabels,
    duration: Histogram,
    instantiation: Histogram,
    active: Gauge,
    warm: Option<Gauge>,
    queued: Gauge,
    ok: Counter,
    forgotten: AtomicBool,
}

impl Series {
    /// How many idle instances the component's warm pool holds now.
    pub(crate) fn set_warm(&self, idle: usize) {
        if let Some(warm) = &self.warm {
            warm.set(i64::try_from(idle).unwrap_or(i64::MAX));
        }
    }

    pub(crate) fn record_restart(&self) {
        if !self.forgotten.load(Ordering::Relaxed) {
            self.metrics.0.restarts.get_or_create(&self.labels).inc();
        }
    }

    /// Counts one invocation by outcome: a finished one, or one refused before it started (at
    /// the concurrency limit, say).
    pub(crate) fn count(&self, outcome: &str) {
        if outcome == "ok" {
            self.ok.inc();
        } else if !self.forgotten.load(Ordering::Relaxed) {
            let labels = self.labels.outcome(outcome);
            self.metrics.0.invocations.get_or_create(&labels).inc();
        }
    }

    /// Counts an invocation as waiting for a concurrency slot until the guard drops.
    pub(crate) fn queued(&self) -> Queued {
        self.queued.inc();
        Queued(self.queued.clone())
    }

    /// How long making a fresh instance took.
    pub(crate) fn instantiated(&self, took: Duration) {
        self.instantiation.observe(took.as_secs_f64());
    }

    /// Starts counting one invocation; finish it with [`Invocation::finish`].
    pub(crate) fn start_invocation(self: &Arc<Self>) -> Invocation {
        self.active.inc();
        Invocation {
            series: self.clone(),
            start: std::time::Instant::now(),
            finished: false,
        }
    }
}

/// An invocation waiting for a slot; see [`Series::queued`].
pub struct Queued(Gauge);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One invocation in flight; counted as an error if dropped unfinished.
pub struct Invocation {
    series: Arc<Series>,
    start: std::time::Instant,
    finished: bool,
}

impl Invocation {
    pub fn finish(mut self, outcome: &str) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: &str) {
        self.finished = true;
        self.series.active.dec();
        self.series
            .duration
            .observe(self.start.elapsed().as_secs_f64());
        self.series.count(outcome);
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        if !self.finished {
            self.record("error");
        }
    }
}
