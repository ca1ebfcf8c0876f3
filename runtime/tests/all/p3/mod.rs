//! WASI 0.3 components: served fresh, pooled and from instances that calls share, every plugin
//! linked into them, 0.2 and 0.3 side by side, and every limit of a call holding per call on a
//! shared instance, against guests that misbehave on purpose (`examples/components/*-p3`).

mod plugins;
mod serving;
mod sharing;

use std::time::Duration;

use crate::common::*;
use weft_runtime::{ComponentSpec, PoolSpec, WorkloadSpec};

/// A workload answering HTTP for `<name>.test` through `wasi:http/handler@0.3`.
pub fn p3_workload(name: &str, components: Vec<ComponentSpec>) -> WorkloadSpec {
    let mut w = http_workload(name, components);
    w.host_interfaces[0] = interface(
        "wasi:http/handler@0.3.2",
        &[("host", &format!("{name}.test"))],
    );
    w
}

/// `example` with a pool whose instances take up to `concurrency` calls at once, `limit` calls
/// in flight for the component, and `timeout` per call.
pub fn shared(example: &str, concurrency: u32, limit: u32, timeout: Duration) -> ComponentSpec {
    let mut c = component(example, example);
    c.limits.max_concurrency = limit;
    c.limits.timeout = timeout;
    c.pool = Some(PoolSpec {
        size: 1,
        max_invocations: 1000,
        idle_timeout: Duration::from_secs(60),
        max_concurrency: concurrency,
    });
    c
}

/// How many instances of `component` in workload `test/<workload>` were made.
pub fn instances_made(t: &TestHost, workload: &str, component: &str) -> u64 {
    let prefix = format!(
        r#"weft_instantiation_duration_seconds_count{{workload="test/{workload}",component="{component}"}} "#
    );
    t.metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
