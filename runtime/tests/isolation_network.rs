//! Attacks on the network: a Workload author lists the host's admin port, cloud metadata or a
//! name that resolves to loopback in `allowedHosts`; the host refuses each by the address it
//! would connect to, and says why. Workloads' services share no loopback.

mod common;

use common::*;

/// A real upstream on loopback, standing for the host's admin port (or anything else local).
async fn upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"upstream says hi")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

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
