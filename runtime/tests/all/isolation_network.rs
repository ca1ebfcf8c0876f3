//! Attacks on the network: a Workload author lists the host's admin port, cloud metadata or a
//! name that resolves to loopback in `allowedHosts`; the host refuses each by the address it
//! would connect to, and says why. Workloads' services share no loopback.

use crate::common::*;

fn fetcher(name: &str, allowed_hosts: &[&str]) -> weft_runtime::WorkloadSpec {
    let mut c = component("fetch", "fetch-http");
    c.allowed_hosts = allowed_hosts.iter().map(|h| h.to_string()).collect();
    http_workload(name, vec![c])
}

#[tokio::test]
async fn outgoing_http_reaches_only_allowed_hosts_at_allowed_addresses() {
    let addr = upstream().await;
    // The host operator lets workloads reach this loopback server.
    let t = TestHost::with(Options {
        egress_allow: vec!["127.0.0.1/32".parse().unwrap()],
        ..Options::default()
    })
    .await;
    t.run(fetcher("allowed", &["127.0.0.1"])).await;
    t.run(fetcher("denied", &[])).await;

    let path = format!("/?url=http://{addr}/");
    assert_eq!(
        t.get("allowed.test", &path).await,
        (200, "upstream says hi".into())
    );
    let (status, body) = t.get("denied.test", &path).await;
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
}

#[tokio::test]
async fn allowed_hosts_cannot_open_loopback_metadata_or_names_that_resolve_there() {
    let admin = upstream().await;
    let t = TestHost::start().await;
    t.run(fetcher(
        "attacker",
        &[
            "127.0.0.1",
            "localhost",
            "169.254.169.254",
            "[::1]",
            "0.0.0.0",
        ],
    ))
    .await;
    let port = admin.port();
    for url in [
        // The host's admin port, by address and by a name that resolves to loopback.
        format!("http://127.0.0.1:{port}/metrics"),
        format!("http://localhost:{port}/metrics"),
        // Cloud metadata: refused before any packet is sent.
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
    ] {
        let (status, body) = t.get("attacker.test", &format!("/?url={url}")).await;
        assert_eq!(status, 502, "{url}: {body}");
        assert!(body.contains("DestinationIpProhibited"), "{url}: {body}");
        assert!(!body.contains("upstream says hi"), "{url}: {body}");
    }
}

/// A workload whose service (`tcp-service`) listens on `$ADDR:7070` and answers `<reply> n`,
/// and whose HTTP component (`tcp-client-http`) pings `$target:7070`.
fn tcp_pair(name: &str, listen: &str, reply: &str, target: &str) -> weft_runtime::WorkloadSpec {
    let mut client = component("client", "tcp-client-http");
    client.env = vec![
        ("SERVICE_ADDR".into(), target.into()),
        ("SERVICE_PORT".into(), "7070".into()),
    ];
    let mut service = component("pong", "tcp-service");
    service.env = vec![
        ("ADDR".into(), listen.into()),
        ("PORT".into(), "7070".into()),
        ("REPLY".into(), reply.into()),
    ];
    weft_runtime::WorkloadSpec {
        service: Some(weft_runtime::ServiceSpec {
            component: service,
            max_restarts: Some(3),
        }),
        ..http_workload(name, vec![client])
    }
}

/// Asks workload `name`'s client to ping its target, until the service has come up.
async fn ping(t: &TestHost, name: &str) -> String {
    eventually(
        "the service to answer",
        std::time::Duration::from_secs(10),
        || async {
            let (status, body) = t.get(&format!("{name}.test"), "/").await;
            (status == 200).then_some(body)
        },
    )
    .await
}

#[tokio::test]
async fn two_workloads_listen_on_the_same_port_and_each_reaches_only_its_own() {
    let t = TestHost::start().await;
    t.run(tcp_pair("a", "127.0.0.1", "from-a", "127.0.0.1"))
        .await;
    t.run(tcp_pair("b", "127.0.0.1", "from-b", "127.0.0.1"))
        .await;
    assert!(ping(&t, "a").await.starts_with("from-a "));
    assert!(ping(&t, "b").await.starts_with("from-b "));
    // Over IPv6 loopback too, and on the unspecified address.
    t.run(tcp_pair("c", "::1", "from-c", "::1")).await;
    t.run(tcp_pair("d", "0.0.0.0", "from-d", "127.0.0.5")).await;
    assert!(ping(&t, "c").await.starts_with("from-c "));
    assert!(ping(&t, "d").await.starts_with("from-d "));
}

#[tokio::test]
async fn a_workload_cannot_reach_another_workloads_listener_by_any_loopback_address() {
    let t = TestHost::start().await;
    // A listens on 127.0.0.1:7070 and [::1] is unused.
    t.run(tcp_pair("a", "127.0.0.1", "from-a", "127.0.0.1"))
        .await;
    assert!(ping(&t, "a").await.starts_with("from-a "));
    // B's service binds 127.0.0.2:7070; B's client then tries A's address.
    t.run(tcp_pair("b", "127.0.0.2", "from-b", "127.0.0.1"))
        .await;
    t.run(tcp_pair("bown", "127.0.0.2", "from-b", "127.0.0.2"))
        .await;
    assert!(ping(&t, "bown").await.starts_with("from-b "));
    for _ in 0..3 {
        let (status, body) = t.get("b.test", "/").await;
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("connection-refused"), "{body}");
    }
}

#[tokio::test]
async fn components_cannot_reach_the_hosts_own_ports_or_the_outside_over_sockets() {
    let t = TestHost::start().await;
    // Real listeners of the host: its HTTP port, and something else on loopback.
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for (name, addr, port) in [
        ("host-http", "127.0.0.1".to_string(), t.addr.port()),
        (
            "other",
            "127.0.0.1".to_string(),
            open.local_addr().unwrap().port(),
        ),
        // Refused before any packet: not a loopback address.
        ("outside", "198.18.0.1".to_string(), 80),
    ] {
        let mut client = component("client", "tcp-client-http");
        client.env = vec![
            ("SERVICE_ADDR".into(), addr.clone()),
            ("SERVICE_PORT".into(), port.to_string()),
        ];
        t.run(http_workload(name, vec![client])).await;
        let (status, body) = t.get(&format!("{name}.test"), "/").await;
        assert_eq!(status, 502, "{name}: {body}");
        assert!(
            body.contains("connection-refused") || body.contains("access-denied"),
            "{name}: {body}"
        );
    }
}

#[tokio::test]
async fn a_service_cannot_listen_on_the_hosts_external_addresses() {
    let t = TestHost::start().await;
    // 198.18.0.1 is no address of this host; the bind is refused before it reaches the OS.
    let workload = tcp_pair("exposed", "198.18.0.1", "x", "198.18.0.1");
    t.run(workload).await;
    let message = eventually(
        "the service to give up",
        std::time::Duration::from_secs(20),
        || async {
            let status = t.host.status("test/exposed").await?;
            let service = status.components.iter().find(|c| c.is_service)?;
            (service.state == weft_runtime::ComponentState::Failed)
                .then(|| service.message.clone().unwrap_or_default())
        },
    )
    .await;
    assert!(message.contains("exited with an error"), "{message}");
}
