//! wasi:http: serving, routing by Host header, and live updates.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::common::*;
use weft_runtime::Reservation;

#[tokio::test]
async fn serves_hello_from_a_real_component() {
    let t = TestHost::start().await;
    t.run(http_workload(
        "hello",
        vec![component("hello", "hello-http")],
    ))
    .await;
    assert_eq!(
        t.get("hello.test", "/").await,
        (200, "Hello from Weft!\n".into())
    );
    assert!(
        t.metrics_text().contains(
            r#"weft_invocations_total{workload="test/hello",component="hello",outcome="ok"} 1"#
        ),
        "{}",
        t.metrics_text()
    );
}

#[tokio::test]
async fn routes_by_host_header() {
    let t = TestHost::start().await;
    t.run(http_workload("one", vec![component("hello", "hello-http")]))
        .await;
    t.run(http_workload(
        "two",
        vec![component("hello", "hello-http-v2")],
    ))
    .await;
    assert_eq!(t.get("one.test", "/").await.1, "Hello from Weft!\n");
    assert_eq!(t.get("TWO.test:8080", "/").await.1, "Hello from Weft v2!\n");
    let (status, body) = t.get("three.test", "/").await;
    assert_eq!(status, 404);
    assert!(
        body.contains("no workload serves host three.test"),
        "{body}"
    );
}

#[tokio::test]
async fn a_host_claimed_twice_is_refused() {
    let t = TestHost::start().await;
    t.run(http_workload("one", vec![component("hello", "hello-http")]))
        .await;
    let mut other = http_workload("other", vec![component("hello", "hello-http")]);
    other.host_interfaces = vec![interface(
        "wasi:http/incoming-handler@0.2.0",
        &[("host", "one.test")],
    )];
    let err = t.host.start_workload(other).await.unwrap_err().to_chain();
    assert!(err.contains("already served by workload test/one"), "{err}");
}

/// Workloads start side by side, so the claim check before binding can race; the router's
/// insert decides, and every loser is refused by name, never left running without its host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_claiming_one_host_at_once_are_refused_but_one() {
    let t = Arc::new(TestHost::start().await);
    let contender = |i: usize| {
        let mut w = http_workload(&format!("w{i}"), vec![component("hello", "hello-http")]);
        w.host_interfaces = vec![interface(
            "wasi:http/incoming-handler@0.2.0",
            &[("host", "contested.test")],
        )];
        w
    };
    let one = Reservation::of(&contender(0));
    let starts: Vec<_> = (0..8)
        .map(|i| {
            let t = t.clone();
            let w = contender(i);
            tokio::spawn(async move { (i, t.host.start_workload(w).await) })
        })
        .collect();
    let mut winners = Vec::new();
    let mut refusals = Vec::new();
    for start in starts {
        match start.await.unwrap() {
            (i, Ok(_)) => winners.push(format!("test/w{i}")),
            (_, Err(err)) => refusals.push(err.to_chain()),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?} {refusals:?}");
    for err in &refusals {
        let named = format!(
            "host contested.test is already served by workload {}",
            winners[0]
        );
        assert!(err.contains(&named), "{err}");
    }
    // The losers hold nothing: neither a route nor their reservation.
    assert_eq!(t.host.workload_ids().await, winners);
    assert_eq!(t.host.budget().reserved(), one);
    assert_eq!(t.get("contested.test", "/").await.0, 200);
}

/// Workloads of one image share its compiled code and instance template; what each was given
/// stays its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_of_one_digest_share_code_but_not_configuration() {
    let t = Arc::new(TestHost::start().await);
    let starts: Vec<_> = (0..12)
        .map(|i| {
            let t = t.clone();
            let mut c = component("config", "config-http");
            c.config = [("greeting".to_string(), format!("hello {i}"))].into();
            let w = http_workload(&format!("c{i}"), vec![c]);
            tokio::spawn(async move { t.host.start_workload(w).await.unwrap() })
        })
        .collect();
    for start in starts {
        start.await.unwrap();
    }
    for i in 0..12 {
        assert_eq!(
            t.get(&format!("c{i}.test"), "/").await,
            (200, format!("hello {i}\n"))
        );
    }
    let metrics = t.metrics_text();
    assert!(
        metrics.contains(r#"weft_compilations_total{source="compiler"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"weft_compilations_total{source="memory"} 11"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_a_workload_fails_no_request() {
    let t = Arc::new(TestHost::start().await);
    t.run(http_workload(
        "live",
        vec![component("hello", "hello-http")],
    ))
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, v2) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut loops = Vec::new();
    for _ in 0..4 {
        let (t, stop, ok, v2) = (t.clone(), stop.clone(), ok.clone(), v2.clone());
        loops.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = t.get("live.test", "/").await;
                assert_eq!(status, 200, "request failed during the update: {body}");
                ok.fetch_add(1, Ordering::Relaxed);
                if body.contains("v2") {
                    v2.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    eventually(
        "requests before the update",
        std::time::Duration::from_secs(10),
        || async { (ok.load(Ordering::Relaxed) > 50).then_some(()) },
    )
    .await;
    t.run(http_workload(
        "live",
        vec![component("hello", "hello-http-v2")],
    ))
    .await;
    eventually(
        "requests served by v2",
        std::time::Duration::from_secs(10),
        || async { (v2.load(Ordering::Relaxed) > 50).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.expect("no request failed");
    }
    assert_eq!(t.get("live.test", "/").await.1, "Hello from Weft v2!\n");
}

#[tokio::test]
async fn stopping_a_workload_removes_its_route_and_its_metrics() {
    let t = TestHost::start().await;
    t.run(http_workload(
        "gone",
        vec![component("hello", "hello-http")],
    ))
    .await;
    t.run(http_workload(
        "kept",
        vec![component("hello", "hello-http")],
    ))
    .await;
    assert_eq!(t.get("gone.test", "/").await.0, 200);
    assert_eq!(t.get("kept.test", "/").await.0, 200);
    assert!(t.metrics_text().contains(r#"workload="test/gone""#));
    t.host.stop_workload("test/gone").await.unwrap();
    assert_eq!(t.get("gone.test", "/").await.0, 404);
    assert!(t.host.status("test/gone").await.is_none());
    // Workloads that come and go under new names do not pile up series in the agent.
    let metrics = t.metrics_text();
    assert!(!metrics.contains(r#"workload="test/gone""#), "{metrics}");
    assert!(
        metrics.contains(
            r#"weft_invocations_total{workload="test/kept",component="hello",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
}
