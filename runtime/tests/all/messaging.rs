//! wasmcloud:messaging through real components (`msg-echo` handles, `msg-publisher-http`
//! publishes and requests over HTTP) on the in-process broker and on a real nats-server:
//! request/reply, namespaces kept apart, bad subjects and configs refused, faulty handlers
//! failing one message at a time, queue groups sharing each message exactly once, and a NATS
//! restart survived.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use futures::StreamExt;
use weft_e2e::NatsServer;
use weft_runtime::WorkloadSpec;
use weft_runtime::plugins::Backends;
use weft_runtime::plugins::messaging::nats::NatsMessaging;
use weft_runtime::plugins::nats::NatsConnection;

const MESSAGING: &str = "wasmcloud:messaging/consumer,handler@0.2.0";

/// An echo handler `name` in `namespace`, its messaging entry configured by `config`.
fn echo(
    namespace: &str,
    name: &str,
    env: &[(&str, &str)],
    config: &[(&str, &str)],
) -> WorkloadSpec {
    let mut c = component("echo", "msg-echo");
    c.limits.timeout = Duration::from_secs(1);
    c.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    WorkloadSpec {
        namespace: namespace.into(),
        name: name.into(),
        components: vec![c],
        service: None,
        host_interfaces: vec![interface(MESSAGING, config)],
        volumes: Vec::new(),
        http_group: None,
    }
}

/// The HTTP publisher, answering `<name>.test`, in `namespace`.
fn publisher(namespace: &str, name: &str, config: &[(&str, &str)]) -> WorkloadSpec {
    let mut w = http_workload(name, vec![component("publisher", "msg-publisher-http")]);
    w.namespace = namespace.into();
    w.host_interfaces.push(interface(MESSAGING, config));
    w
}

async fn nats_host(nats: &NatsServer) -> TestHost {
    TestHost::with(Options {
        backends: Backends {
            messaging: vec![Arc::new(NatsMessaging::new(
                NatsConnection::new(&nats.url()).unwrap(),
            ))],
            ..Default::default()
        },
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn a_request_is_echoed_and_faulty_messages_fail_alone_on_the_memory_broker() {
    let t = TestHost::start().await;
    t.run(echo("test", "echo", &[], &[("subscriptions", "echo.>")]))
        .await;
    t.run(publisher("test", "pub", &[])).await;
    assert_eq!(
        t.request("POST", "pub.test", "/request/echo.hi", "hello")
            .await,
        (200, "hello".into())
    );
    // A handler that traps, then one that runs past its 1 s timeout: each fails alone and
    // the next message is handled.
    assert_eq!(
        t.request("POST", "pub.test", "/publish/echo.x", "trap")
            .await
            .0,
        200
    );
    let (status, body) = t
        .request("POST", "pub.test", "/request/echo.x?timeout=300", "sleep")
        .await;
    assert_eq!(
        (status, body.as_str()),
        (502, "messaging error: no reply within 300ms\n")
    );
    assert_eq!(
        t.request("POST", "pub.test", "/request/echo.next", "still here")
            .await,
        (200, "still here".into())
    );
    t.wait_for_metric(
        r#"weft_invocations_total{workload="test/echo",component="echo",outcome="trap"} 1"#,
    )
    .await;
    t.wait_for_metric(
        r#"weft_invocations_total{workload="test/echo",component="echo",outcome="timeout"} 1"#,
    )
    .await;
}

#[tokio::test]
async fn namespaces_never_share_subjects_and_bad_subjects_are_error_values() {
    let t = TestHost::start().await;
    t.run(echo("test", "echo", &[], &[("subscriptions", "echo.>")]))
        .await;
    let mut other = publisher("other", "intruder", &[]);
    other.host_interfaces[0] = interface(
        "wasi:http/incoming-handler@0.2.0",
        &[("host", "intruder.test")],
    );
    t.run(other).await;
    // The same subject from another namespace reaches no one.
    assert_eq!(
        t.request("POST", "intruder.test", "/request/echo.hi", "x")
            .await,
        (
            502,
            "messaging error: no one is subscribed to other.echo.hi\n".into()
        )
    );
    // Naming the other namespace's broker subject in full stays inside its own namespace too.
    assert_eq!(
        t.request("POST", "intruder.test", "/request/test.echo.hi", "x")
            .await,
        (
            502,
            "messaging error: no one is subscribed to other.test.echo.hi\n".into()
        )
    );
    t.run(publisher("test", "pub", &[])).await;
    for (path, why) in [
        ("/publish/echo..x", "empty token"),
        ("/publish/echo.*", "wildcards are only for subscriptions"),
        ("/request/echo.*.x", "wildcards are only for subscriptions"),
    ] {
        let (status, body) = t.request("POST", "pub.test", path, "x").await;
        assert_eq!(status, 502, "{path}: {body}");
        assert!(
            body.contains("invalid subject") && body.contains(why),
            "{path}: {body}"
        );
    }
    let big = "x".repeat(1024 * 1024 + 1);
    let (status, body) = t
        .request("POST", "pub.test", "/publish/echo.big", &big)
        .await;
    assert_eq!(status, 502);
    assert!(body.contains("over the limit of 1048576"), "{body}");
}

#[tokio::test]
async fn bad_messaging_configs_are_refused_with_the_reason() {
    let t = TestHost::start().await;
    let cases: [(WorkloadSpec, &str); 5] = [
        (
            publisher("test", "a", &[("subscriptions", "orders")]),
            "config subscriptions is set but no component exports wasmcloud:messaging/handler",
        ),
        (
            echo("test", "b", &[], &[("subscriptions", "orders..new")]),
            "subscriptions: invalid subject \"orders..new\": empty token",
        ),
        (
            echo(
                "test",
                "c",
                &[],
                &[("subscriptions", "a"), ("backend", "kafka")],
            ),
            "wasmcloud:messaging backend \"kafka\" is not offered by this host (it offers memory)",
        ),
        (
            echo(
                "test",
                "d",
                &[],
                &[("subscriptions", "a"), ("broadcast", "yes")],
            ),
            "broadcast: \"yes\" is not \"true\" or \"false\"",
        ),
        (
            echo(
                "test",
                "e",
                &[],
                &[("subscriptions", "a"), ("queue-group", "a b")],
            ),
            "queue-group: invalid subject",
        ),
    ];
    for (workload, reason) in cases {
        let name = workload.name.clone();
        let err = t
            .host
            .start_workload(workload)
            .await
            .unwrap_err()
            .to_chain();
        assert!(err.contains(reason), "{name}: {err}");
    }
}

#[tokio::test]
async fn on_nats_a_real_client_gets_replies_and_the_host_survives_a_restart() {
    let mut nats = NatsServer::start();
    let t = nats_host(&nats).await;
    t.run(echo(
        "test",
        "echo",
        &[],
        &[("subscriptions", "echo.>"), ("backend", "nats")],
    ))
    .await;
    // Live before the workload is reported started: the first request finds it.
    let mut request = nats.client();
    request.args([
        "request",
        "test.echo.cli",
        "from the nats cli",
        "--timeout",
        "5s",
        "--raw",
    ]);
    // The CLI blocks; the host must keep running meanwhile.
    let output = tokio::task::spawn_blocking(move || request.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "from the nats cli"
    );

    t.run(publisher("test", "pub", &[("backend", "nats")]))
        .await;
    assert_eq!(
        t.request("POST", "pub.test", "/request/echo.hi", "hello")
            .await,
        (200, "hello".into())
    );

    nats.stop();
    let (status, body) = t
        .request("POST", "pub.test", "/request/echo.hi", "down")
        .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.starts_with("messaging error: "), "{body}");
    nats.restart();
    // The client reconnects and resubscribes by itself; no restart of the host.
    eventually(
        "requests to work again after NATS restarted",
        Duration::from_secs(20),
        || {
            let t = &t;
            async move {
                let answer = t
                    .request("POST", "pub.test", "/request/echo.hi", "back")
                    .await;
                (answer == (200, "back".to_string())).then_some(())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn two_workloads_in_one_queue_group_handle_each_of_1000_messages_once() {
    let nats = NatsServer::start();
    let t = nats_host(&nats).await;
    for tag in ["a", "b"] {
        let config = [
            ("subscriptions", "work"),
            ("backend", "nats"),
            ("queue-group", "workers"),
        ];
        let env = [("FORWARD_TO", "handled"), ("TAG", tag)];
        let mut w = echo("test", &format!("worker-{tag}"), &env, &config);
        w.components[0].limits.max_concurrency = 4;
        t.run(w).await;
    }
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut handled = client.subscribe("test.handled").await.unwrap();
    client.flush().await.unwrap();
    for n in 0..1000 {
        client
            .publish("test.work", n.to_string().into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    let mut seen = BTreeMap::<u32, String>::new();
    let mut by = BTreeMap::<String, usize>::new();
    while seen.len() < 1000 {
        let message = tokio::time::timeout(Duration::from_secs(30), handled.next())
            .await
            .expect("1000 messages handled within 30 s")
            .unwrap();
        let text = String::from_utf8(message.payload.to_vec()).unwrap();
        let (tag, n) = text.split_once(':').unwrap();
        let previous = seen.insert(n.parse().unwrap(), tag.to_string());
        assert!(previous.is_none(), "message {n} handled twice");
        *by.entry(tag.to_string()).or_default() += 1;
    }
    // Nothing more arrives: no message was handled twice.
    let extra = tokio::time::timeout(Duration::from_millis(500), handled.next()).await;
    assert!(extra.is_err(), "an extra message: {extra:?}");
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..1000).collect::<Vec<_>>()
    );
    assert!(
        by.values().all(|&n| n > 0),
        "both workloads took a share: {by:?}"
    );
}

#[tokio::test]
async fn a_nats_backend_that_cannot_be_reached_fails_its_workload_alone() {
    let port = weft_e2e::process::free_port();
    let t = TestHost::with(Options {
        backends: Backends {
            messaging: vec![Arc::new(NatsMessaging::new(
                NatsConnection::new(&format!("nats://127.0.0.1:{port}")).unwrap(),
            ))],
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let err = t
        .host
        .start_workload(echo(
            "test",
            "echo",
            &[],
            &[("subscriptions", "a"), ("backend", "nats")],
        ))
        .await
        .unwrap_err()
        .to_chain();
    assert!(
        err.contains(&format!("backend wasmcloud:messaging nats is unavailable: subscribing to test.a: 127.0.0.1:{port}")),
        "{err}"
    );
    // Others are unaffected.
    t.run(echo("test", "local", &[], &[("subscriptions", "echo.>")]))
        .await;
    t.run(publisher("test", "pub", &[])).await;
    assert_eq!(
        t.request("POST", "pub.test", "/request/echo.hi", "hello")
            .await,
        (200, "hello".into())
    );
}

/// A handler's reply subject is granted for its own message only. A pooled instance can keep
/// the subject of an earlier message in its memory (another tenant's request inbox, say) and
/// publish to it later: the host then treats it as an ordinary subject, scoped into the
/// handler's own namespace, so it never reaches the raw inbox.
#[tokio::test]
async fn a_pooled_handler_cannot_reply_to_an_earlier_message_later() {
    let nats = NatsServer::start();
    let t = nats_host(&nats).await;
    let mut w = echo(
        "test",
        "echo",
        &[],
        &[("subscriptions", "echo.>"), ("backend", "nats")],
    );
    w.components[0].limits.max_concurrency = 1;
    w.components[0].pool = Some(weft_runtime::PoolSpec {
        size: 1,
        max_invocations: 100,
        idle_timeout: Duration::from_secs(60),
        max_concurrency: 1,
    });
    t.run(w).await;

    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut victim = client.subscribe("_INBOX.victim").await.unwrap();
    let mut scoped = client.subscribe("test._INBOX.victim").await.unwrap();
    let mut attacker = client.subscribe("_INBOX.attacker").await.unwrap();
    client.flush().await.unwrap();

    // A request answered on its own reply subject, as granted.
    client
        .publish_with_reply("test.echo.a", "_INBOX.victim", "first".into())
        .await
        .unwrap();
    assert_eq!(next(&mut victim).await, "first");

    // The same warm instance (it remembers the subject) publishes to it again, later.
    client
        .publish_with_reply("test.echo.b", "_INBOX.attacker", "replay".into())
        .await
        .unwrap();
    assert_eq!(next(&mut attacker).await, "published to _INBOX.victim");
    // One host connection sent both, in order, to this one client: had the raw inbox been
    // reached, that message would be here before the reply just received.
    assert_not_reached(&client, &mut victim, "the earlier reply subject").await;
    // It landed in the handler's own namespace instead.
    assert_eq!(next(&mut scoped).await, "stolen");
}

/// The next message's body on `sub`, within 10 s.
async fn next(sub: &mut async_nats::Subscriber) -> String {
    let message = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a message within 10 s")
        .unwrap();
    String::from_utf8(message.payload.to_vec()).unwrap()
}

#[tokio::test]
async fn idle_subscriptions_hold_no_host_slot_and_their_number_is_bounded() {
    // Two messages in flight on this host in all: sixteen idle subscriptions of one Workload
    // held them all before (a slot was taken before waiting), and every other Workload's
    // messages waited for ever.
    let t = TestHost::with(Options {
        backends: Backends {
            messages_in_flight: 2,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let many: Vec<String> = (1..=16).map(|i| format!("idle{i}")).collect();
    t.run(echo(
        "test",
        "idle",
        &[],
        &[("subscriptions", &many.join(","))],
    ))
    .await;
    t.run(echo("test", "echo", &[], &[("subscriptions", "echo.>")]))
        .await;
    t.run(publisher("test", "pub", &[])).await;
    assert_eq!(
        t.request(
            "POST",
            "pub.test",
            "/request/echo.hi?timeout=5000",
            "served"
        )
        .await,
        (200, "served".into())
    );
    // A seventeenth subject is refused, saying so.
    let too_many = format!("{},idle17", many.join(","));
    let err = t
        .host
        .start_workload(echo("test", "greedy", &[], &[("subscriptions", &too_many)]))
        .await
        .unwrap_err()
        .to_chain();
    assert!(err.contains("17 subjects, at most 16"), "{err}");
}

#[tokio::test]
async fn a_reply_to_another_namespace_stays_in_the_handlers_own() {
    let nats = NatsServer::start();
    let t = nats_host(&nats).await;
    t.run(echo(
        "test",
        "echo",
        &[],
        &[("subscriptions", "echo.>"), ("backend", "nats")],
    ))
    .await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut theirs = client.subscribe("other.secret").await.unwrap();
    let mut scoped = client.subscribe("test.other.secret").await.unwrap();
    let mut inbox = client.subscribe("_INBOX.mine").await.unwrap();
    client.flush().await.unwrap();
    // A client that can reach this namespace names another's subject as reply-to.
    client
        .publish_with_reply("test.echo.a", "other.secret", "confused deputy".into())
        .await
        .unwrap();
    assert_eq!(next(&mut scoped).await, "confused deputy");
    // An inbox is still answered as it is.
    client
        .publish_with_reply("test.echo.b", "_INBOX.mine", "asked".into())
        .await
        .unwrap();
    assert_eq!(next(&mut inbox).await, "asked");
    // Both replies were sent in order by one handler connection: the other namespace's
    // subject, had it been reached, would have had its message before the inbox's.
    assert_not_reached(&client, &mut theirs, "the other namespace's subject").await;
}

/// Asserts `subscriber` holds no message, once every message sent before has arrived (the
/// caller has already received one sent after any that would be here).
async fn assert_not_reached(
    client: &async_nats::Client,
    subscriber: &mut async_nats::Subscriber,
    what: &str,
) {
    client.flush().await.unwrap();
    assert!(
        futures::FutureExt::now_or_never(subscriber.next()).is_none(),
        "{what} was reached"
    );
}
