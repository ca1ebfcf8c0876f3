//! Attacks on time and memory: a guest blocked in a host call, thousands of them, a memory bomb
//! spread over several memories, a Workload bigger than the host, a sibling hammered through
//! linked calls. Each is contained and says why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use weft_runtime::{Limits, ServiceSpec, WorkloadSpec};

fn sleeper(timeout: Duration, concurrency: u32) -> weft_runtime::ComponentSpec {
    let mut c = component("faulty", "faulty-http");
    c.limits = Limits {
        memory_bytes: 16 << 20,
        timeout,
        max_concurrency: concurrency,
        ..Limits::default()
    };
    c
}

#[tokio::test]
async fn a_guest_blocked_in_a_host_call_ends_at_its_timeout() {
    let t = TestHost::start().await;
    t.run(http_workload(
        "sleepy",
        vec![sleeper(Duration::from_millis(300), 4)],
    ))
    .await;
    let start = Instant::now();
    let (status, body) = t.get("sleepy.test", "/sleep").await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("exceeded its timeout"), "{body}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(
        t.metrics_text()
            .contains(r#"weft_active_instances{workload="test/sleepy",component="faulty"} 0"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_blocked_requests_leave_the_host_serving_others() {
    let t = Arc::new(TestHost::start().await);
    t.run(http_workload(
        "sleepy",
        vec![sleeper(Duration::from_millis(100), 50)],
    ))
    .await;
    t.run(http_workload(
        "hello",
        vec![component("hello", "hello-http")],
    ))
    .await;
    // 2,000 requests that block in a host call, 200 at a time; meanwhile the other workload
    // keeps answering.
    let attack = {
        let t = t.clone();
        tokio::spawn(async move {
            let gate = Arc::new(tokio::sync::Semaphore::new(200));
            let mut requests = Vec::new();
            for _ in 0..2000 {
                let permit = gate.clone().acquire_owned().await.unwrap();
                let t = t.clone();
                requests.push(tokio::spawn(async move {
                    let _permit = permit;
                    t.get("sleepy.test", "/sleep").await.0
                }));
            }
            let mut statuses = Vec::new();
            for r in requests {
                statuses.push(r.await.unwrap());
            }
            statuses
        })
    };
    let mut served = 0;
    while !attack.is_finished() {
        assert_eq!(t.get("hello.test", "/").await.0, 200);
        served += 1;
    }
    let statuses = attack.await.unwrap();
    assert!(served > 0);
    // Each blocked request ended: at its timeout (504) or refused at the concurrency limit (503).
    assert!(
        statuses.iter().all(|s| *s == 504 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&504));
    // Every instance and slot is back.
    assert!(
        t.metrics_text()
            .contains(r#"weft_active_instances{workload="test/sleepy",component="faulty"} 0"#)
    );
    assert_eq!(t.get("hello.test", "/").await.0, 200);
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_invocation() {
    use tokio::io::AsyncWriteExt;
    let t = TestHost::start().await;
    t.run(http_workload(
        "sleepy",
        vec![sleeper(Duration::from_secs(60), 4)],
    ))
    .await;
    let mut stream = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    stream
        .write_all(b"GET /sleep HTTP/1.1\r\nHost: sleepy.test\r\n\r\n")
        .await
        .unwrap();
    let active = r#"weft_active_instances{workload="test/sleepy",component="faulty"}"#;
    t.wait_for_metric(&format!("{active} 1")).await;
    drop(stream);
    // Within 10 s: far sooner than the 60 s timeout.
    t.wait_for_metric(&format!("{active} 0")).await;
}

#[tokio::test]
async fn a_workload_over_the_memory_budget_is_refused_with_the_numbers() {
    let t = TestHost::with(Options {
        memory_budget: Some(1 << 30),
        ..Options::default()
    })
    .await;
    let mut small = component("hello", "hello-http");
    small.limits.memory_bytes = 64 << 20;
    small.limits.max_concurrency = 8;
    t.run(http_workload("small", vec![small])).await;
    let mut big = component("hello", "hello-http");
    big.limits.memory_bytes = 256 << 20;
    big.limits.max_concurrency = 4;
    let err = t
        .host
        .start_workload(http_workload("big", vec![big]))
        .await
        .unwrap_err()
        .to_chain();
    assert!(err.contains("test/big does not fit on this host"), "{err}");
    assert!(err.contains("needs 1 GiB of memory"), "{err}");
    assert!(
        err.contains("limits.memory 256 MiB × maxConcurrency 4"),
        "{err}"
    );
    assert!(err.contains("512 MiB free of its 1 GiB budget"), "{err}");
    // The refused workload took nothing: stopping the first frees room for it.
    assert_eq!(t.host.budget().reserved().memory, 512 << 20);
    t.host.stop_workload("test/small").await.unwrap();
    let mut big = component("hello", "hello-http");
    big.limits.memory_bytes = 256 << 20;
    big.limits.max_concurrency = 4;
    t.run(http_workload("big", vec![big])).await;
}

#[tokio::test]
async fn a_memory_bomb_over_several_memories_stays_within_its_limit() {
    let t = TestHost::start().await;
    let mut bomb = component("bomb", "multi-memory");
    // Each memory grows to ~20 MiB: under the limit alone, over it together.
    bomb.limits.memory_bytes = 32 << 20;
    let workload = WorkloadSpec {
        service: Some(ServiceSpec {
            component: bomb,
            max_restarts: Some(0),
        }),
        ..http_workload("bomb", Vec::new())
    };
    t.run(workload).await;
    let message = eventually("the service to fail", Duration::from_secs(10), || {
        let host = t.host.clone();
        async move {
            let status = host.status("test/bomb").await?;
            let service = status.components.iter().find(|c| c.is_service)?;
            (service.state == weft_runtime::ComponentState::Failed)
                .then(|| service.message.clone().unwrap_or_default())
        }
    })
    .await;
    assert!(message.contains("exceeded its memory limit"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_call_respects_the_providers_max_concurrency() {
    let t = Arc::new(TestHost::start().await);
    let mut greeter = component("greeter", "greeter");
    // One call at a time, each waits at most 300 ms for the slot; `slow` holds it 500 ms.
    greeter.limits.max_concurrency = 1;
    greeter.limits.timeout = Duration::from_millis(600);
    t.run(http_workload(
        "greet",
        vec![component("web", "greet-http"), greeter],
    ))
    .await;
    let slow = {
        let t = t.clone();
        tokio::spawn(async move { t.get("greet.test", "/?name=slow").await })
    };
    let busy = r#"weft_active_instances{workload="test/greet",component="greeter"} 1"#;
    t.wait_for_metric(busy).await;
    let (status, body) = t.get("greet.test", "/?name=fast").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("linked call to greeter failed"), "{body}");
    assert!(body.contains("concurrency limit"), "{body}");
    assert_eq!(slow.await.unwrap(), (200, "Hello, slow!\n".into()));
    // The provider's own metrics count its linked invocations.
    let metrics = t.metrics_text();
    assert!(
        metrics.contains(
            r#"weft_invocations_total{workload="test/greet",component="greeter",outcome="busy"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"weft_invocations_total{workload="test/greet",component="greeter",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_timeout_over_the_hosts_maximum_is_refused_saying_so() {
    let t = TestHost::start().await;
    let mut forever = component("hello", "hello-http");
    forever.limits.timeout = Duration::from_secs(2562047 * 3600);
    let err = t
        .host
        .start_workload(http_workload("forever", vec![forever]))
        .await
        .unwrap_err()
        .to_chain();
    assert!(
        err.contains("asks for limits.timeout 292years") && err.contains("(--max-timeout)"),
        "{err}"
    );
    assert_eq!(t.host.budget().reserved().memory, 0, "it took nothing");
}

#[tokio::test]
async fn stopping_a_workload_ends_the_calls_it_has_running() {
    let t = TestHost::start().await;
    // A 0.2 call blocked in a host call, a 0.3 call on a shared instance waiting on a timer,
    // and a 0.3 body still being written after its response head went out: each would run for
    // minutes (every timeout is 5 minutes).
    let minutes = Duration::from_secs(300);
    t.run(http_workload("p2", vec![sleeper(minutes, 4)])).await;
    let mut p3 = component("faulty", "faulty-p3");
    p3.limits.timeout = minutes;
    p3.pool = Some(weft_runtime::PoolSpec {
        size: 1,
        max_invocations: 100,
        idle_timeout: minutes,
        max_concurrency: 4,
    });
    let mut w = http_workload("p3", vec![p3]);
    w.host_interfaces[0] = interface("wasi:http/handler@0.3.2", &[("host", "p3.test")]);
    t.run(w).await;
    let mut stream = component("stream", "stream-p3");
    stream.limits.timeout = minutes;
    let mut w = http_workload("body", vec![stream]);
    w.host_interfaces[0] = interface("wasi:http/handler@0.3.2", &[("host", "body.test")]);
    t.run(w).await;

    let calls = async {
        tokio::join!(
            t.get("p2.test", "/sleep"),
            t.get("p3.test", "/sleep?ms=300000"),
            t.get("body.test", "/?chunks=3000&ms=100"),
        )
    };
    let stop = async {
        for workload in ["p2", "p3", "body"] {
            let active = format!(r#"weft_active_instances{{workload="test/{workload}",component="#);
            eventually("the call to start", Duration::from_secs(10), || async {
                t.metrics_text()
                    .lines()
                    .any(|l| l.starts_with(&active) && l.ends_with(" 1"))
                    .then_some(())
            })
            .await;
        }
        for workload in ["test/p2", "test/p3", "test/body"] {
            t.host.stop_workload(workload).await.unwrap();
        }
    };
    let ((p2, p3, body), ()) = tokio::join!(calls, stop);
    // Answered at the stop, not minutes later (each client waits at most 30 s).
    assert_eq!(p2.0, 500, "{p2:?}");
    assert!(p2.1.contains("its workload stopped"), "{p2:?}");
    assert_eq!(p3.0, 500, "{p3:?}");
    assert!(p3.1.contains("its workload stopped"), "{p3:?}");
    assert_eq!(body.0, 200, "its head was out before the stop");
    assert!(
        body.1.lines().count() < 3000,
        "the body was cut at the stop"
    );
}

#[tokio::test]
async fn a_guest_hoarding_host_resources_is_stopped_at_its_instances_cap() {
    let t = TestHost::start().await;
    t.run(http_workload(
        "hoard",
        vec![sleeper(Duration::from_secs(30), 2)],
    ))
    .await;
    let (status, body) = t.get("hoard.test", "/hoard").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("resource table has no free keys"), "{body}");
    assert_eq!(t.get("hoard.test", "/ok").await, (200, "ok\n".into()));
}
