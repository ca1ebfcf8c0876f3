//! Warm instance pools: state left in an instance carries to the next call only on that
//! instance and only within `max_invocations`; an instance whose call trapped or timed out is
//! never reused; warm instances live within the concurrency the host reserved memory for, and
//! go after their idle timeout.

use std::time::Duration;

use crate::common::*;
use weft_runtime::{Limits, PoolSpec};

fn pooled(size: u32, max_invocations: u32, idle_timeout: Duration) -> weft_runtime::ComponentSpec {
    let mut c = component("faulty", "faulty-http");
    c.limits = Limits {
        memory_bytes: 32 << 20,
        timeout: Duration::from_millis(500),
        max_concurrency: 2,
        ..Limits::default()
    };
    c.pool = Some(PoolSpec {
        size,
        max_invocations,
        idle_timeout,
        max_concurrency: 1,
    });
    c
}

async fn count(t: &TestHost) -> String {
    let (status, body) = t.get("faulty.test", "/count").await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn counts(t: &TestHost, n: usize) -> Vec<String> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(count(t).await.trim().to_owned());
    }
    all
}

#[tokio::test]
async fn a_fresh_instance_per_call_without_a_pool() {
    let t = TestHost::start().await;
    let mut c = pooled(1, 1, Duration::from_secs(60));
    c.pool = None;
    t.run(http_workload("faulty", vec![c])).await;
    assert_eq!(counts(&t, 3).await, ["1", "1", "1"]);
}

#[tokio::test]
async fn state_carries_over_only_within_max_invocations() {
    let t = TestHost::start().await;
    t.run(http_workload(
        "faulty",
        vec![pooled(1, 3, Duration::from_secs(60))],
    ))
    .await;
    assert_eq!(
        counts(&t, 7).await,
        ["1", "2", "3", "1", "2", "3", "1"],
        "retired after three calls"
    );
    t.wait_for_metric(r#"weft_warm_instances{workload="test/faulty",component="faulty"} 1"#)
        .await;
}

#[tokio::test]
async fn a_trapped_or_timed_out_instance_is_never_reused() {
    let t = TestHost::start().await;
    t.run(http_workload(
        "faulty",
        vec![pooled(1, 100, Duration::from_secs(60))],
    ))
    .await;
    assert_eq!(counts(&t, 2).await, ["1", "2"]);
    assert_eq!(t.get("faulty.test", "/trap").await.0, 500);
    assert_eq!(
        counts(&t, 2).await,
        ["1", "2"],
        "a fresh instance after the trap"
    );
    assert_eq!(t.get("faulty.test", "/sleep").await.0, 504);
    assert_eq!(
        counts(&t, 1).await,
        ["1"],
        "a fresh instance after the timeout"
    );
    assert_eq!(t.get("faulty.test", "/alloc").await.0, 500);
    assert_eq!(
        counts(&t, 1).await,
        ["1"],
        "a fresh instance after the memory limit"
    );
}

#[tokio::test]
async fn warm_instances_stay_within_the_reserved_concurrency_and_expire() {
    let t = TestHost::start().await;
    // Two slots reserved (maxConcurrency 2), a pool of two: eight calls at once (six waiting
    // for a slot) leave at most two warm, and take no memory or slots beyond the reservation.
    t.run(http_workload(
        "faulty",
        vec![pooled(2, 100, Duration::from_millis(300))],
    ))
    .await;
    let calls = (0..8).map(|_| count(&t));
    futures::future::join_all(calls).await;
    let warm = warm_instances(&t);
    assert!((1..=2).contains(&warm), "{warm} warm instances");
    let budget = t.host.budget().reserved();
    assert_eq!(
        budget.instances, 2,
        "the pool took no slots beyond maxConcurrency"
    );
    assert_eq!(budget.memory, 2 * (32 << 20));
    // Idle past the timeout (waiting out the timeout is the point): dropped by the sweep.
    tokio::time::sleep(Duration::from_millis(400)).await;
    t.host.sweep_idle_instances().await;
    assert_eq!(warm_instances(&t), 0);
    assert_eq!(
        counts(&t, 1).await,
        ["1"],
        "a fresh instance after the idle timeout"
    );
}

/// The `weft_warm_instances` gauge of the faulty component.
fn warm_instances(t: &TestHost) -> u32 {
    let prefix = r#"weft_warm_instances{workload="test/faulty",component="faulty"} "#;
    t.metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_pooled_call_that_sets_no_response_fails_at_once_and_retires_its_instance() {
    let t = TestHost::start().await;
    // A long timeout and idle timeout: neither may be what ends the call.
    let mut c = pooled(1, 100, Duration::from_secs(60));
    c.limits.timeout = Duration::from_secs(30);
    t.run(http_workload("faulty", vec![c])).await;
    assert_eq!(counts(&t, 2).await, ["1", "2"]);
    let (status, body) = t.get("faulty.test", "/forget").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("without setting a response"), "{body}");
    // Counted as the error it is when the call returned, not as a timeout.
    t.wait_for_metric(
        r#"weft_invocations_total{workload="test/faulty",component="faulty",outcome="error"} 1"#,
    )
    .await;
    assert_eq!(counts(&t, 1).await, ["1"], "the instance was not kept");
}
