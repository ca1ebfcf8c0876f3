//! A guest that traps, loops forever or allocates without bound fails only that request; the
//! next request, and every other workload, carry on.

mod common;

use std::time::Duration;

use common::*;
use weft_runtime::Limits;

fn faulty() -> weft_runtime::ComponentSpec {
    let mut c = component("faulty", "faulty-http");
    c.limits = Limits {
        memory_bytes: 32 << 20,
        timeout: Duration::from_millis(500),
        max_concurrency: None,
    };
    c
}

async fn host_with_faulty() -> TestHost {
    let t = TestHost::start().await;
    t.host
        .start_workload(http_workload("faulty", vec![faulty()]))
        .await
        .unwrap();
    t.host
        .start_workload(http_workload(
            "hello",
            vec![component("hello", "hello-http")],
        ))
        .await
        .unwrap();
    t
}

async fn assert_still_serving(t: &TestHost) {
    assert_eq!(t.get("faulty.test", "/ok").await, (200, "ok\n".into()));
    assert_eq!(t.get("hello.test", "/").await.0, 200);
}

#[tokio::test]
async fn a_trap_fails_only_that_request() {
    let t = host_with_faulty().await;
    let (status, body) = t.get("faulty.test", "/trap").await;
    assert_eq!(status, 500);
    assert!(body.contains("component trapped"), "{body}");
    assert_still_serving(&t).await;
    assert!(t.metrics_text().contains(r#"outcome="trap"} 1"#));
}

#[tokio::test]
async fn an_endless_loop_times_out() {
    let t = host_with_faulty().await;
    let (status, body) = t.get("faulty.test", "/loop").await;
    assert_eq!(status, 503);
    assert!(body.contains("exceeded its timeout"), "{body}");
    assert_still_serving(&t).await;
}

#[tokio::test]
async fn a_memory_bomb_hits_its_limit() {
    let t = host_with_faulty().await;
    let (status, body) = t.get("faulty.test", "/alloc").await;
    assert_eq!(status, 500);
    assert!(body.contains("memory limit"), "{body}");
    assert_still_serving(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_do_not_starve_other_workloads() {
    let t = std::sync::Arc::new(host_with_faulty().await);
    let looping: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.get("faulty.test", "/loop").await })
        })
        .collect();
    // While four guests spin, the other workload still answers.
    for _ in 0..5 {
        assert_eq!(t.get("hello.test", "/").await.0, 200);
    }
    for l in looping {
        assert_eq!(l.await.unwrap().0, 503);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_queues_and_then_refuses() {
    let t = std::sync::Arc::new(TestHost::start().await);
    let mut c = faulty();
    c.limits.max_concurrency = Some(1);
    t.host
        .start_workload(http_workload("one", vec![c]))
        .await
        .unwrap();
    // One looping request holds the only slot for its whole timeout; a second request waits
    // for the slot no longer than the timeout and is refused.
    let first = {
        let t = t.clone();
        tokio::spawn(async move { t.get("one.test", "/loop").await })
    };
    eventually(
        "the first request to hold the slot",
        Duration::from_secs(5),
        || async {
            t.metrics_text()
                .contains(r#"weft_active_instances{workload="test/one",component="faulty"} 1"#)
                .then_some(())
        },
    )
    .await;
    let (status, body) = t.get("one.test", "/ok").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("concurrency limit"), "{body}");
    assert_eq!(first.await.unwrap().0, 503);
    assert_eq!(t.get("one.test", "/ok").await.0, 200);
}
