//! A guest that traps, loops forever or allocates without bound fails only that request; the
//! next request, and every other workload, carry on.

use std::time::Duration;

use crate::common::*;
use weft_runtime::{Compiler, Engine, Limits, Tier};

fn faulty() -> weft_runtime::ComponentSpec {
    let mut c = component("faulty", "faulty-http");
    c.limits = Limits {
        memory_bytes: 32 << 20,
        timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    c
}

async fn host_with_faulty() -> TestHost {
    let t = TestHost::start().await;
    t.run(http_workload("faulty", vec![faulty()])).await;
    t.run(http_workload(
        "hello",
        vec![component("hello", "hello-http")],
    ))
    .await;
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
    assert_eq!(status, 504);
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

/// Winch's code is held to the same limits as Cranelift's: its loops check the epoch (the
/// timeout) and its memory grows through the same limiter.
#[tokio::test]
async fn baseline_code_times_out_and_hits_its_memory_limit() {
    let engine = Engine::builder()
        .max_instances(20)
        .compiler(Compiler::Winch)
        .build()
        .unwrap();
    let t = TestHost::with_engine(engine).await;
    t.run(http_workload("faulty", vec![faulty()])).await;
    let status = t.host.status("test/faulty").await.unwrap();
    assert_eq!(status.components[0].tier, Tier::Baseline);
    let (status, body) = t.get("faulty.test", "/loop").await;
    assert_eq!(status, 504);
    assert!(body.contains("exceeded its timeout"), "{body}");
    let (status, body) = t.get("faulty.test", "/alloc").await;
    assert_eq!(status, 500);
    assert!(body.contains("memory limit"), "{body}");
    let (status, body) = t.get("faulty.test", "/trap").await;
    assert_eq!(status, 500);
    assert!(body.contains("component trapped"), "{body}");
    assert_eq!(t.get("faulty.test", "/ok").await, (200, "ok\n".into()));
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
        assert_eq!(l.await.unwrap().0, 504);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_queues_and_then_refuses() {
    let t = std::sync::Arc::new(TestHost::start().await);
    let mut c = faulty();
    c.limits.max_concurrency = 1;
    t.run(http_workload("one", vec![c])).await;
    let gauge = |name: &str, value: u32| {
        format!(r#"{name}{{workload="test/one",component="faulty"}} {value}"#)
    };
    let spawn_get = |path: &'static str| {
        let t = t.clone();
        tokio::spawn(async move { t.get("one.test", path).await })
    };
    let wait_for = |series: String| {
        let t = t.clone();
        async move {
            eventually(&series.clone(), Duration::from_secs(5), || {
                let found = t.metrics_text().contains(&series);
                async move { found.then_some(()) }
            })
            .await
        }
    };

    // The only slot is held by a looping request for its whole timeout (500 ms); a request
    // waits for a slot at most half its timeout, so it is refused.
    let first = spawn_get("/loop");
    wait_for(gauge("weft_active_instances", 1)).await;
    let (status, body) = t.get("one.test", "/ok").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("concurrency limit"), "{body}");
    assert_eq!(first.await.unwrap().0, 504);
    // Short requests queue for the slot one after another and are all served.
    let burst: Vec<_> = (0..10).map(|_| spawn_get("/ok")).collect();
    for request in burst {
        assert_eq!(request.await.unwrap(), (200, "ok\n".into()));
    }
    assert!(t.metrics_text().contains(r#"outcome="busy"} 1"#));
}
