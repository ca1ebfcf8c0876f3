//! Prometheus metrics of the operator, served on `/metrics` by [`crate::admin`].

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use weft_api::{Host, Phase, Workload};

use crate::scheduler::host_ready;

/// Name of the Workload controller in the `controller` label.
pub const WORKLOAD_CONTROLLER: &str = "workload";
/// Name of the Host controller in the `controller` label.
pub const HOST_CONTROLLER: &str = "host";
/// Name of the WorkloadDeployment controller in the `controller` label.
pub const DEPLOYMENT_CONTROLLER: &str = "workloaddeployment";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: PhaseLabel,
}

/// `status.phase` as a label value; `Pending` covers Workloads without a phase yet.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum PhaseLabel {
    Pending,
    Scheduled,
    Running,
    Failed,
    Terminating,
}

impl From<Phase> for PhaseLabel {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::Pending => Self::Pending,
            Phase::Scheduled => Self::Scheduled,
            Phase::Running => Self::Running,
            Phase::Failed => Self::Failed,
            Phase::Terminating => Self::Terminating,
        }
    }
}

const ALL_PHASES: [PhaseLabel; 5] = [
    PhaseLabel::Pending,
    PhaseLabel::Scheduled,
    PhaseLabel::Running,
    PhaseLabel::Failed,
    PhaseLabel::Terminating,
];

/// The operator's metrics and the registry that serves them.
pub struct Metrics {
    pub registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ControllerLabels, Counter>,
    scheduling_duration: Histogram,
    hosts_ready: Gauge,
    workloads: Family<PhaseLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("weft_operator");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register("reconciles", "Reconciliations run", reconciles.clone());
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed",
            reconcile_errors.clone(),
        );
        // 50 ms to ~50 s: scheduling is fast unless a Workload waited for a Host.
        let scheduling_duration = Histogram::new(exponential_buckets(0.05, 2.0, 11));
        registry.register(
            "scheduling_duration_seconds",
            "Time from a Workload's creation (or its Host becoming unschedulable) to its host label being set",
            scheduling_duration.clone(),
        );
        let hosts_ready = Gauge::default();
        registry.register(
            "hosts_ready",
            "Hosts whose Ready condition is True",
            hosts_ready.clone(),
        );
        let workloads = Family::<PhaseLabels, Gauge>::default();
        registry.register("workloads", "Workloads by phase", workloads.clone());
        // Every series from the start, so rates and alerts work before the first error.
        for controller in [WORKLOAD_CONTROLLER, HOST_CONTROLLER, DEPLOYMENT_CONTROLLER] {
            let _ = reconciles.get_or_create(&ControllerLabels { controller });
            let _ = reconcile_errors.get_or_create(&ControllerLabels { controller });
        }
        Self {
            registry,
            reconciles,
            reconcile_errors,
            scheduling_duration,
            hosts_ready,
            workloads,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, controller: &'static str) {
        self.reconciles
            .get_or_create(&ControllerLabels { controller })
            .inc();
    }

    pub fn reconcile_failed(&self, controller: &'static str) {
        self.reconcile_errors
            .get_or_create(&ControllerLabels { controller })
            .inc();
    }

    pub fn scheduled_after(&self, seconds: f64) {
        self.scheduling_duration.observe(seconds.max(0.0));
    }

    /// Recomputes the gauges from the caches.
    pub fn observe_cluster<'a>(
        &self,
        hosts: impl IntoIterator<Item = &'a Host>,
        workloads: impl IntoIterator<Item = &'a Workload>,
    ) {
        let ready = hosts.into_iter().filter(|host| host_ready(host)).count();
        self.hosts_ready
            .set(i64::try_from(ready).unwrap_or(i64::MAX));
        let mut counts = [0i64; ALL_PHASES.len()];
        for workload in workloads {
            let phase = workload
                .status
                .as_ref()
                .and_then(|status| status.phase)
                .map_or(PhaseLabel::Pending, PhaseLabel::from);
            if let Some(i) = ALL_PHASES.iter().position(|p| *p == phase) {
                counts[i] += 1;
            }
        }
        for (phase, count) in ALL_PHASES.iter().zip(counts) {
            self.workloads
                .get_or_create(&PhaseLabels { phase: *phase })
                .set(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_metric() {
        let metrics = Metrics::default();
        metrics.reconciled(WORKLOAD_CONTROLLER);
        metrics.reconcile_failed(HOST_CONTROLLER);
        metrics.scheduled_after(0.2);
        metrics.observe_cluster([], [&Workload::default()]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        for needle in [
            "weft_operator_reconciles_total{controller=\"workload\"} 1",
            "weft_operator_reconcile_errors_total{controller=\"host\"} 1",
            "weft_operator_scheduling_duration_seconds_count 1",
            "weft_operator_hosts_ready 0",
            "weft_operator_workloads{phase=\"Pending\"} 1",
            "weft_operator_workloads{phase=\"Running\"} 0",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
