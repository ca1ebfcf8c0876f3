//! Long-running services: restarted with back-off up to maxRestarts, state visible; only they
//! may listen, and their workload's components reach them on loopback.

use std::time::Duration;

use crate::common::*;
use weft_runtime::{Compiler, ComponentState, Engine, ServiceSpec, Tier, WorkloadSpec};

fn with_service(mut w: WorkloadSpec, image: &str, env: &[(&str, &str)], max: u32) -> WorkloadSpec {
    let mut c = component("svc", image);
    c.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    w.service = Some(ServiceSpec {
        component: c,
        max_restarts: Some(max),
    });
    w
}

/// A service is never moved to other code (that would restart it): it gets Cranelift's code
/// before it starts, while the workload's other components start on baseline code.
#[tokio::test]
async fn a_service_starts_on_optimized_code() {
    let engine = Engine::builder()
        .max_instances(20)
        .compiler(Compiler::Tiered { baseline_above: 0 })
        .build()
        .unwrap();
    let t = TestHost::with_engine(engine).await;
    let w = with_service(
        http_workload("tiers", vec![component("hello", "hello-http")]),
        "service-loop",
        &[],
        3,
    );
    t.run(w).await;
    let status = t.host.status("test/tiers").await.unwrap();
    let svc = status.components.iter().find(|c| c.is_service).unwrap();
    assert_eq!(svc.tier, Tier::Optimized);
    let metrics = t.metrics_text();
    assert!(
        metrics.contains(r#"weft_compilations_total{source="baseline"} 1"#),
        "{metrics}"
    );
    t.host.stop_workload("test/tiers").await.unwrap();
}

#[tokio::test]
async fn a_service_runs_for_the_life_of_its_workload() {
    let t = TestHost::start().await;
    let w = with_service(
        http_workload("tick", vec![component("hello", "hello-http")]),
        "service-loop",
        &[],
        3,
    );
    let mut events = t.host.subscribe();
    t.run(w).await;
    // Still running after several of its 100 ms ticks, never restarted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = t.host.status("test/tick").await.unwrap();
    let svc = status.components.iter().find(|c| c.is_service).unwrap();
    assert_eq!((svc.state, svc.restarts), (ComponentState::Running, 0));
    while let Ok(event) = events.try_recv() {
        assert_eq!(
            (event.state, event.restarts),
            (ComponentState::Running, 0),
            "{event:?}"
        );
    }
    t.host.stop_workload("test/tick").await.unwrap();
}

#[tokio::test]
async fn an_exiting_service_is_restarted_until_max_restarts() {
    let t = TestHost::start().await;
    let mut events = t.host.subscribe();
    let w = with_service(
        http_workload("crashy", vec![component("hello", "hello-http")]),
        "service-loop",
        &[("EXIT_AFTER_TICKS", "1")],
        2,
    );
    t.run(w).await;
    let failed = eventually("the service to give up", Duration::from_secs(10), || {
        let next = events.try_recv().ok();
        async move { next.filter(|e| e.state == ComponentState::Failed) }
    })
    .await;
    assert_eq!(failed.restarts, 2);
    assert!(failed.message.unwrap().contains("exited with an error"));
    let status = t.host.status("test/crashy").await.unwrap();
    let svc = status.components.iter().find(|c| c.is_service).unwrap();
    assert_eq!((svc.state, svc.restarts), (ComponentState::Failed, 2));
    assert!(!status.ready());
    // The workload's components keep serving.
    assert_eq!(t.get("crashy.test", "/").await.0, 200);
    assert!(
        t.metrics_text()
            .contains(r#"weft_service_restarts_total{workload="test/crashy",component="svc"} 2"#)
    );
}

#[tokio::test]
async fn a_trapping_service_is_restarted_with_the_trap_as_reason() {
    let t = TestHost::start().await;
    let mut events = t.host.subscribe();
    let w = with_service(
        http_workload("trappy", vec![component("hello", "hello-http")]),
        "service-loop",
        &[("TRAP_AFTER_TICKS", "1")],
        5,
    );
    t.run(w).await;
    let restarting = eventually("a restart", Duration::from_secs(10), || {
        let next = events.try_recv().ok();
        async move { next.filter(|e| e.state == ComponentState::Restarting) }
    })
    .await;
    assert!(restarting.message.unwrap().contains("trapped"));
}

#[tokio::test]
async fn components_reach_their_service_over_loopback() {
    let port = {
        // A free port for the service to listen on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let t = TestHost::start().await;
    let mut client = component("client", "tcp-client-http");
    client.env = vec![("SERVICE_PORT".into(), port.clone())];
    let w = with_service(
        http_workload("tcp", vec![client]),
        "tcp-service",
        &[("PORT", &port)],
        3,
    );
    t.run(w).await;
    let body = eventually("the service to answer", Duration::from_secs(10), || async {
        let (status, body) = t.get("tcp.test", "/").await;
        (status == 200).then_some(body)
    })
    .await;
    assert!(body.starts_with("pong "), "{body}");
}

/// The seed's cron example with service `image`: the service imports what `job` exports; each
/// call is an invocation of `job` (its limits, its metrics), which counts itself in wasi:keyvalue.
async fn assert_the_service_calls_a_sibling_on_a_schedule(image: &str) {
    let t = TestHost::start().await;
    let mut w = with_service(
        http_workload(
            "cron",
            vec![
                component("job", "cron-job"),
                component("counter", "kv-counter-http"),
            ],
        ),
        image,
        &[("INTERVAL_MS", "50")],
        0,
    );
    w.host_interfaces.push(interface(
        "wasi:keyvalue/store,atomics,batch@0.2.0-draft",
        &[],
    ));
    t.run(w).await;
    let runs = eventually(
        "the job to run three times",
        Duration::from_secs(10),
        || async {
            let (status, body) = t.get("cron.test", "/get?bucket=cron&key=runs").await;
            let runs: u64 = body.trim().parse().ok()?;
            (status == 200 && runs >= 3).then_some(runs)
        },
    )
    .await;
    assert!(runs >= 3, "{image}");
    assert!(
        t.metrics_text().contains(
            r#"weft_invocations_total{workload="test/cron",component="job",outcome="ok"}"#
        ),
        "{image}"
    );
}

#[tokio::test]
async fn a_service_calls_a_sibling_on_a_schedule() {
    assert_the_service_calls_a_sibling_on_a_schedule("cron-service").await;
}

#[tokio::test]
async fn a_service_exporting_one_custom_interface_is_started_by_its_one_function() {
    // cron-scheduler exports weft:examples/scheduler (start: func()) instead of wasi:cli/run.
    assert_the_service_calls_a_sibling_on_a_schedule("cron-scheduler").await;
}

#[tokio::test]
async fn a_service_without_an_entry_point_is_refused_saying_why() {
    let t = TestHost::start().await;
    for (image, reason) in [
        (
            "greeter",
            "component svc: a service exporting weft:examples/greet@0.1.0 instead of wasi:cli/run is started by that interface's one function, which takes no parameters; it has greet (1 parameters)",
        ),
        (
            "hello-http",
            "component svc: a service exporting wasi:http/incoming-handler@0.2.12 instead of wasi:cli/run is started by that interface's one function, which takes no parameters; it has handle (2 parameters)",
        ),
    ] {
        let w = with_service(http_workload("bad", Vec::new()), image, &[], 0);
        let err = t.host.start_workload(w).await.unwrap_err().to_chain();
        assert_eq!(err, reason, "{image}");
    }
}
