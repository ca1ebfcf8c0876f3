//! Attacks from HTTP clients: slowloris heads, stalled bodies, oversized bodies, a flood of
//! connections, more requests than a component takes. Each is cut off with a clear answer and
//! the host keeps serving.

use std::time::{Duration, Instant};

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weft_runtime::http_server::ServerLimits;

fn limits(header_ms: u64, body_ms: u64, connections: usize) -> ServerLimits {
    ServerLimits {
        max_connections: connections,
        header_timeout: Duration::from_millis(header_ms),
        body_idle_timeout: Duration::from_millis(body_ms),
    }
}

async fn host(server: ServerLimits) -> TestHost {
    let t = TestHost::with(Options {
        server,
        ..Options::default()
    })
    .await;
    t.run(http_workload(
        "hello",
        vec![component("hello", "hello-http")],
    ))
    .await;
    let mut faulty = component("faulty", "faulty-http");
    faulty.limits.max_request_body = 1024;
    faulty.limits.max_concurrency = 1;
    faulty.limits.timeout = Duration::from_secs(2);
    t.run(http_workload("faulty", vec![faulty])).await;
    t
}

/// Reads until the server closes the connection (or `within` passes: then panics).
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut seen)).await;
    assert!(read.is_ok(), "connection still open after {within:?}");
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn slowloris_connections_are_closed_and_others_are_served() {
    let t = host(limits(300, 30_000, 10_000)).await;
    let mut slow = Vec::new();
    for i in 0..20 {
        let mut stream = TcpStream::connect(t.addr).await.unwrap();
        if i % 2 == 0 {
            // Half a request head, never finished; the others say nothing at all.
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: hello.test\r\nX-Slow: 1\r\n")
                .await
                .unwrap();
        }
        slow.push(stream);
    }
    assert_eq!(t.get("hello.test", "/").await.0, 200);
    let start = Instant::now();
    for stream in &mut slow {
        read_until_closed(stream, Duration::from_secs(5)).await;
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(t.get("hello.test", "/").await.0, 200);
}

#[tokio::test]
async fn a_flood_of_connections_gets_503_past_the_cap() {
    let t = host(limits(10_000, 30_000, 4)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(t.addr).await.unwrap());
    }
    let mut extra = TcpStream::connect(t.addr).await.unwrap();
    let answer = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    assert!(answer.contains("connection limit"), "{answer}");
    drop(held);
    eventually("a free connection slot", Duration::from_secs(5), || async {
        let (status, _) = t.get("hello.test", "/").await;
        (status == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn bodies_over_the_components_limit_are_refused() {
    let t = host(ServerLimits::default()).await;
    assert_eq!(
        t.request("POST", "faulty.test", "/echo", &"x".repeat(500))
            .await,
        (200, "read 500 bytes\n".into())
    );
    // Declared too big: refused before the guest runs.
    let (status, body) = t
        .request("POST", "faulty.test", "/echo", &"x".repeat(2000))
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("limits.maxRequestBody"), "{body}");
    // Not declared (chunked): the guest's stream ends in an error at the limit.
    let mut stream = TcpStream::connect(t.addr).await.unwrap();
    let chunk = "x".repeat(1500);
    stream
        .write_all(
            format!(
                "POST /echo HTTP/1.1\r\nHost: faulty.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
                chunk.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("body read failed"), "{answer}");
}

#[tokio::test]
async fn a_stalled_body_ends_at_the_idle_timeout() {
    let t = host(limits(10_000, 300, 10_000)).await;
    let mut stream = TcpStream::connect(t.addr).await.unwrap();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: faulty.test\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let start = Instant::now();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("body read failed"), "{answer}");
    // Long before the component's own 2 s timeout.
    assert!(
        start.elapsed() < Duration::from_millis(1900),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_answered_503_with_retry_after() {
    let t = std::sync::Arc::new(host(ServerLimits::default()).await);
    let sleeping = {
        let t = t.clone();
        tokio::spawn(async move { t.get("faulty.test", "/sleep").await })
    };
    let busy = r#"weft_active_instances{workload="test/faulty",component="faulty"} 1"#;
    t.wait_for_metric(busy).await;
    let mut stream = TcpStream::connect(t.addr).await.unwrap();
    stream
        .write_all(b"GET /ok HTTP/1.1\r\nHost: faulty.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert_eq!(sleeping.await.unwrap().0, 504);
}
