//! Runtime metrics in Prometheus form: invocations by outcome, their duration, instantiation
//! time, active instances, compilations and service restarts.

use std::sync::Arc;
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

    /// How many idle instances a component's warm pool holds now.
    pub(crate) fn set_warm(&self, id: &Identity, idle: usize) {
        self.0
            .warm
            .get_or_create(&labels(id))
            .set(i64::try_from(idle).unwrap_or(i64::MAX));
    }

    pub(crate) fn record_service_restart(&self, id: &Identity) {
        self.0.restarts.get_or_create(&labels(id)).inc();
    }

    /// Counts an invocation refused before it started (e.g. at the concurrency limit).
    pub fn count_refused(&self, id: &Identity, outcome: &str) {
        let labels = labels(id);
        self.0
            .invocations
            .get_or_create(&InvocationLabels {
                workload: labels.workload,
                component: labels.component,
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Counts an invocation as waiting for a concurrency slot until the guard drops.
    pub fn queued(&self, id: &Identity) -> Queued {
        let gauge = self.0.queued.get_or_create(&labels(id)).clone();
        gauge.inc();
        Queued(gauge)
    }

    /// Starts counting one invocation; finish it with [`Invocation::finish`].
    pub fn start_invocation(&self, id: &Identity) -> Invocation {
        let labels = labels(id);
        self.0.active.get_or_create(&labels).inc();
        Invocation {
            metrics: self.clone(),
            labels,
            start: std::time::Instant::now(),
            finished: false,
        }
    }
}

/// An invocation waiting for a slot; see [`RuntimeMetrics::queued`].
pub struct Queued(Gauge);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One invocation in flight; counted as an error if dropped unfinished.
pub struct Invocation {
    metrics: RuntimeMetrics,
    labels: ComponentLabels,
    start: std::time::Instant,
    finished: bool,
}

impl Invocation {
    pub fn instantiated(&self, took: Duration) {
        self.metrics
            .0
            .instantiation
            .get_or_create(&self.labels)
            .observe(took.as_secs_f64());
    }

    pub fn finish(mut self, outcome: &str) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: &str) {
        self.finished = true;
        let m = &self.metrics.0;
        m.active.get_or_create(&self.labels).dec();
        m.duration
            .get_or_create(&self.labels)
            .observe(self.start.elapsed().as_secs_f64());
        m.invocations
            .get_or_create(&InvocationLabels {
                workload: self.labels.workload.clone(),
                component: self.labels.component.clone(),
                outcome: outcome.into(),
            })
            .inc();
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        if !self.finished {
            self.record("error");
        }
    }
}
