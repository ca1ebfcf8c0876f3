//! Instances that calls share (`pool.maxConcurrency` above one): fifty slow calls finish
//! together on one instance, and every limit holds per call against a guest that overruns,
//! never yields, traps, runs out of memory, leaves work running, or keeps a request's body.

use std::time::Duration;

use super::*;

#[tokio::test]
async fn fifty_slow_requests_finish_together_on_one_instance() {
    let t = TestHost::start().await;
    // One after another, fifty 300 ms calls would take 15 s: far past the 5 s timeout.
    t.run(p3_workload(
        "sleep",
        vec![shared("sleep-p3", 50, 50, Duration::from_secs(5))],
    ))
    .await;
    let calls = (0..50).map(|_| t.get("sleep.test", "/?ms=300"));
    for (status, body) in futures::future::join_all(calls).await {
        assert_eq!((status, body.as_str()), (200, "slept 300 ms\n"));
    }
    assert_eq!(instances_made(&t, "sleep", "sleep-p3"), 1);
}

#[tokio::test]
async fn a_call_past_its_deadline_fails_alone() {
    let t = TestHost::start().await;
    t.run(p3_workload(
        "faulty",
        vec![shared("faulty-p3", 8, 8, Duration::from_secs(1))],
    ))
    .await;
    let late = t.get("faulty.test", "/sleep?ms=5000");
    let neighbours =
        futures::future::join_all((0..3).map(|_| t.get("faulty.test", "/sleep?ms=200")));
    let (late, neighbours) = tokio::join!(late, neighbours);
    assert_eq!(late.0, 504, "{late:?}");
    for neighbour in neighbours {
        assert_eq!(neighbour, (200, "slept 200 ms\n".into()));
    }
    assert_eq!(instances_made(&t, "faulty", "faulty-p3"), 1);
    // The instance that held the late call takes no more: the next call gets a fresh one.
    assert_eq!(t.get("faulty.test", "/count").await, (200, "1\n".into()));
    assert_eq!(instances_made(&t, "faulty", "faulty-p3"), 2);
}

#[tokio::test]
async fn a_guest_that_never_yields_is_trapped_at_its_deadline_and_calls_go_elsewhere() {
    let t = TestHost::start().await;
    t.run(p3_workload(
        "faulty",
        vec![shared("faulty-p3", 8, 8, Duration::from_secs(2))],
    ))
    .await;
    let t = &t;
    let after = |ms: u64, path: &'static str| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        t.get("faulty.test", path).await
    };
    // The spinner waits 200 ms, then computes forever. The sleeper joins its instance before
    // that (its guests all wait) and is still waiting when the spinner is trapped at its
    // deadline: it is told why it failed. A call that arrives while the spinner spins goes to
    // another instance and answers.
    let (spin, sleeper, later) = tokio::join!(
        after(0, "/spin?after=200"),
        after(100, "/sleep?ms=1950"),
        after(600, "/sleep?ms=100"),
    );
    assert_eq!(spin.0, 504, "{spin:?}");
    assert_eq!(sleeper.0, 500, "{sleeper:?}");
    assert!(
        sleeper
            .1
            .contains("the instance it shared with other calls failed"),
        "{sleeper:?}"
    );
    assert_eq!(
        later,
        (200, "slept 100 ms\n".into()),
        "served by another instance"
    );
    assert_eq!(instances_made(t, "faulty", "faulty-p3"), 2);
}

#[tokio::test]
async fn a_trap_fails_only_the_calls_its_instance_held() {
    let t = TestHost::start().await;
    for name in ["a", "b"] {
        t.run(p3_workload(
            name,
            vec![shared("faulty-p3", 8, 8, Duration::from_secs(5))],
        ))
        .await;
    }
    let held = t.get("a.test", "/sleep?ms=500");
    let other = t.get("b.test", "/sleep?ms=500");
    let trap = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        t.get("a.test", "/trap").await
    };
    let (held, other, trap) = tokio::join!(held, other, trap);
    assert_eq!(trap.0, 500, "{trap:?}");
    assert!(trap.1.contains("trap"), "{trap:?}");
    assert_eq!(held.0, 500, "{held:?}");
    assert_eq!(
        other,
        (200, "slept 500 ms\n".into()),
        "another workload's instance"
    );
    assert_eq!(
        t.get("a.test", "/count").await,
        (200, "1\n".into()),
        "a fresh instance"
    );
}

#[tokio::test]
async fn a_refused_memory_growth_retires_the_shared_instance() {
    let t = TestHost::start().await;
    let mut c = shared("faulty-p3", 4, 4, Duration::from_secs(5));
    c.limits.memory_bytes = 32 << 20;
    t.run(p3_workload("faulty", vec![c])).await;
    assert_eq!(t.get("faulty.test", "/count").await, (200, "1\n".into()));
    let (status, body) = t.get("faulty.test", "/alloc").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("memory limit"), "{body}");
    assert_eq!(
        t.get("faulty.test", "/count").await,
        (200, "1\n".into()),
        "a fresh instance"
    );
    // Within its reservation: memory × maxConcurrency, one instance slot per concurrent call.
    assert_eq!(t.host.budget().reserved().memory, 4 * (32 << 20));
}

#[tokio::test]
async fn a_shared_instance_serves_max_invocations_calls_then_retires() {
    let t = TestHost::start().await;
    let mut c = shared("faulty-p3", 4, 4, Duration::from_secs(5));
    c.pool.as_mut().unwrap().max_invocations = 3;
    t.run(p3_workload("faulty", vec![c])).await;
    let mut counts = Vec::new();
    for _ in 0..7 {
        counts.push(t.get("faulty.test", "/count").await.1.trim().to_owned());
    }
    assert_eq!(counts, ["1", "2", "3", "1", "2", "3", "1"]);
}

#[tokio::test]
async fn work_left_behind_ends_by_its_deadline() {
    let t = TestHost::start().await;
    t.run(p3_workload(
        "faulty",
        vec![shared("faulty-p3", 4, 4, Duration::from_secs(1))],
    ))
    .await;
    // A task left computing after the response is trapped at the call's deadline: the instance
    // goes, and a later call gets a fresh one.
    assert_eq!(
        t.get("faulty.test", "/leak?kind=spin").await,
        (200, "leaked\n".into())
    );
    eventually(
        "a fresh instance after the spin",
        Duration::from_secs(10),
        || async {
            let (status, body) = t.get("faulty.test", "/count").await;
            (status == 200 && body == "1\n").then_some(())
        },
    )
    .await;
    // A task left waiting (an hour) may not keep its instance past the latest deadline either.
    let made = instances_made(&t, "faulty", "faulty-p3");
    assert_eq!(
        t.get("faulty.test", "/leak?kind=sleep").await,
        (200, "leaked\n".into())
    );
    eventually(
        "the leaky instance to retire",
        Duration::from_secs(10),
        || async {
            t.host.sweep_idle_instances().await;
            let warm = t
                .metrics_text()
                .contains(r#"weft_warm_instances{workload="test/faulty",component="faulty-p3"} 0"#);
            warm.then_some(())
        },
    )
    .await;
    assert_eq!(t.get("faulty.test", "/count").await, (200, "1\n".into()));
    assert_eq!(instances_made(&t, "faulty", "faulty-p3"), made + 1);
}

#[tokio::test]
async fn a_kept_request_body_is_closed_for_the_next_request() {
    let t = TestHost::start().await;
    t.run(p3_workload(
        "faulty",
        vec![shared("faulty-p3", 4, 4, Duration::from_secs(5))],
    ))
    .await;
    let (status, body) = t
        .request("POST", "faulty.test", "/keep-body", "secret")
        .await;
    assert_eq!((status, body.as_str()), (200, "kept\n"));
    assert_eq!(
        t.get("faulty.test", "/stolen-body").await,
        (200, "closed\n".into()),
        "the kept stream gives nothing of the earlier request"
    );
    assert_eq!(
        instances_made(&t, "faulty", "faulty-p3"),
        1,
        "one instance served both"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_call_on_an_instance_of_its_own() {
    use tokio::io::AsyncWriteExt;
    let t = TestHost::start().await;
    t.run(p3_workload(
        "faulty",
        vec![component("faulty", "faulty-p3")],
    ))
    .await;
    let mut client = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    client
        .write_all(b"GET /sleep?ms=20000 HTTP/1.1\r\nHost: faulty.test\r\n\r\n")
        .await
        .unwrap();
    t.wait_for_metric(r#"weft_active_instances{workload="test/faulty",component="faulty"} 1"#)
        .await;
    drop(client);
    // Ended long before its 20 s sleep: its instance was dropped with the call.
    t.wait_for_metric(
        r#"weft_invocations_total{workload="test/faulty",component="faulty",outcome="error"} 1"#,
    )
    .await;
    t.wait_for_metric(r#"weft_active_instances{workload="test/faulty",component="faulty"} 0"#)
        .await;
}
