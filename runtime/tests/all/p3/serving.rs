//! Serving: a 0.3 component answers fresh, pooled and shared; its body streams after `handle`
//! returns; a timer is awaited; a service runs `run` and is restarted; and 0.2 and 0.3
//! components link to each other both ways.

use std::time::Duration;

use weft_runtime::{ComponentState, ServiceSpec, WorkloadSpec};

use super::*;

#[tokio::test]
async fn hello_answers_fresh_pooled_and_shared() {
    let t = TestHost::start().await;
    let fresh = component("hello", "hello-p3");
    let mut pooled = component("hello", "hello-p3");
    pooled.pool = Some(PoolSpec {
        size: 1,
        max_invocations: 100,
        idle_timeout: Duration::from_secs(60),
        max_concurrency: 1,
    });
    let shared = shared("hello-p3", 16, 16, Duration::from_secs(5));
    for (name, c) in [("fresh", fresh), ("pooled", pooled), ("shared", shared)] {
        t.run(p3_workload(name, vec![c])).await;
        for _ in 0..3 {
            let host = format!("{name}.test");
            assert_eq!(
                t.get(&host, "/").await,
                (200, "Hello from Weft!\n".into()),
                "{name}"
            );
        }
    }
    assert_eq!(instances_made(&t, "fresh", "hello"), 3);
    assert_eq!(instances_made(&t, "pooled", "hello"), 1);
    assert_eq!(instances_made(&t, "shared", "hello-p3"), 1);
    let status = t.host.status("test/fresh").await.unwrap();
    assert_eq!(status.components[0].exports, ["wasi:http/handler@0.3.2"]);
}

#[tokio::test]
async fn a_body_streams_after_handle_returns_and_a_request_body_streams_back() {
    let t = TestHost::start().await;
    // On an instance of its own, and on a shared one, whose call ends with the response head
    // while the guest goes on writing the body (and reading the request's).
    t.run(p3_workload(
        "stream",
        vec![component("stream", "stream-p3")],
    ))
    .await;
    t.run(p3_workload(
        "shared",
        vec![shared("stream-p3", 8, 8, Duration::from_secs(10))],
    ))
    .await;
    let big = "0123456789abcdef".repeat(64 * 1024);
    for host in ["stream.test", "shared.test"] {
        let (status, body) = t.get(host, "/?chunks=5&ms=20").await;
        assert_eq!(status, 200, "{host}");
        assert_eq!(
            body, "chunk 1\nchunk 2\nchunk 3\nchunk 4\nchunk 5\n",
            "{host}"
        );
        let (status, echoed) = t.request("POST", host, "/echo", &big).await;
        assert_eq!(status, 200, "{host}");
        assert_eq!(echoed.len(), big.len(), "{host}");
        assert!(echoed == big, "{host}: the echoed body differs");
    }
}

#[tokio::test]
async fn a_timer_is_awaited() {
    let t = TestHost::start().await;
    t.run(p3_workload("sleep", vec![component("sleep", "sleep-p3")]))
        .await;
    assert_eq!(
        t.get("sleep.test", "/?ms=50").await,
        (200, "slept 50 ms\n".into())
    );
}

#[tokio::test]
async fn a_body_written_past_the_deadline_is_cut() {
    let t = TestHost::start().await;
    let mut c = component("stream", "stream-p3");
    c.limits.timeout = Duration::from_millis(500);
    t.run(p3_workload("slow", vec![c])).await;
    // A hundred chunks a tenth of a second apart would take ten seconds.
    let (status, body) = t.get("slow.test", "/?chunks=100&ms=100").await;
    assert_eq!(status, 200, "the head was sent before the deadline");
    assert!(body.lines().count() < 100, "{body}");
    t.wait_for_metric(
        r#"weft_invocations_total{workload="test/slow",component="stream",outcome="timeout"} 1"#,
    )
    .await;
    // On a shared instance the call ended with the head; its body is cut at the same deadline.
    t.run(p3_workload(
        "slow-shared",
        vec![shared("stream-p3", 4, 4, Duration::from_millis(500))],
    ))
    .await;
    let (status, body) = t.get("slow-shared.test", "/?chunks=100&ms=100").await;
    assert_eq!(status, 200);
    assert!(body.lines().count() < 100, "{body}");
}

#[tokio::test]
async fn a_service_runs_and_is_restarted() {
    let t = TestHost::start().await;
    let mut events = t.host.subscribe();
    let mut w = p3_workload("svc", vec![component("hello", "hello-p3")]);
    let mut svc = component("ticker", "service-p3");
    svc.env = vec![
        ("INTERVAL_MS".into(), "10".into()),
        ("EXIT_AFTER_TICKS".into(), "3".into()),
    ];
    w.service = Some(ServiceSpec {
        component: svc,
        max_restarts: Some(1),
    });
    t.run(w).await;
    let failed = eventually("the service to give up", Duration::from_secs(10), || {
        let event = events.try_recv().ok();
        async move { event.filter(|e| e.state == ComponentState::Failed) }
    })
    .await;
    assert_eq!(failed.restarts, 1);
    assert!(
        failed
            .message
            .as_deref()
            .is_some_and(|m| m.contains("exited with an error")),
        "{failed:?}"
    );
    assert_eq!(
        t.get("svc.test", "/").await.0,
        200,
        "the HTTP component is unaffected"
    );
}

#[tokio::test]
async fn a_p3_component_calls_a_p2_one_and_the_other_way() {
    let t = TestHost::start().await;
    t.run(p3_workload(
        "three-to-two",
        vec![
            component("web", "greet-p3"),
            component("greeter", "greeter"),
        ],
    ))
    .await;
    assert_eq!(
        t.get("three-to-two.test", "/?name=p2").await,
        (200, "Hello, p2!\n".into())
    );
    t.run(http_workload(
        "two-to-three",
        vec![
            component("web", "greet-http"),
            component("greeter", "greeter-p3"),
        ],
    ))
    .await;
    assert_eq!(
        t.get("two-to-three.test", "/?name=p3").await,
        (200, "Hello, p3!\n".into())
    );
}

#[tokio::test]
async fn the_host_says_it_serves_wasi_0_3_http() {
    let t = TestHost::start().await;
    let served: Vec<String> = t
        .host
        .served_interfaces()
        .into_iter()
        .map(|(i, _)| i.to_string())
        .collect();
    for wanted in [
        "wasi:http/handler@0.3.0",
        "wasi:http/incoming-handler@0.2.0",
    ] {
        assert!(
            served.iter().any(|s| s.contains(wanted)),
            "{wanted} not in {served:?}"
        );
    }
}

/// A workload whose 0.3 service listens on 127.0.0.1:7070 and answers `<reply> n`, and whose
/// 0.2 HTTP component pings it there.
fn tcp_pair(name: &str, reply: &str) -> WorkloadSpec {
    let mut client = component("client", "tcp-client-http");
    client.env = vec![
        ("SERVICE_ADDR".into(), "127.0.0.1".into()),
        ("SERVICE_PORT".into(), "7070".into()),
    ];
    let mut service = component("pong", "tcp-service-p3");
    service.env = vec![
        ("ADDR".into(), "127.0.0.1".into()),
        ("PORT".into(), "7070".into()),
        ("REPLY".into(), reply.into()),
    ];
    WorkloadSpec {
        service: Some(ServiceSpec {
            component: service,
            max_restarts: Some(3),
        }),
        ..http_workload(name, vec![client])
    }
}

#[tokio::test]
async fn p3_services_listen_on_their_own_workloads_loopback() {
    let t = TestHost::start().await;
    // Both bind 127.0.0.1:7070: each gets a private port behind its own workload's address.
    t.run(tcp_pair("a", "from-a")).await;
    t.run(tcp_pair("b", "from-b")).await;
    for (name, reply) in [("a", "from-a "), ("b", "from-b ")] {
        let body = eventually("the service to answer", Duration::from_secs(10), || async {
            let (status, body) = t.get(&format!("{name}.test"), "/").await;
            (status == 200).then_some(body)
        })
        .await;
        assert!(body.starts_with(reply), "{name}: {body}");
    }
}
