//! What components are given, and nothing more: wasi:config values, volumes, outgoing HTTP only
//! to allowed hosts.

mod common;

use std::collections::BTreeMap;

use common::*;
use weft_runtime::{MountSpec, VolumeSource, VolumeSpec};

#[tokio::test]
async fn config_comes_from_the_interface_and_the_component() {
    let t = TestHost::start().await;
    let mut c = component("config", "config-http");
    c.config = BTreeMap::from([("greeting".into(), "hello from the component".into())]);
    let mut w = http_workload("config", vec![c]);
    w.host_interfaces.push(interface(
        "wasi:config/store@0.2.0-rc.1",
        &[("greeting", "from the interface"), ("colour", "blue")],
    ));
    t.run(w).await;
    // The component's value wins over the interface's.
    assert_eq!(
        t.get("config.test", "/").await,
        (200, "hello from the component\n".into())
    );
    let (_, all) = t.get("config.test", "/all").await;
    assert_eq!(all, "colour=blue\ngreeting=hello from the component\n");
}

fn volume_workload(read_only: bool, source: VolumeSource) -> weft_runtime::WorkloadSpec {
    let mut c = component("files", "volume-http");
    c.mounts = vec![MountSpec {
        volume: "data".into(),
        path: "/data".into(),
        read_only,
    }];
    let mut w = http_workload("files", vec![c]);
    w.volumes = vec![VolumeSpec {
        name: "data".into(),
        source,
    }];
    w
}

#[tokio::test]
async fn an_empty_dir_is_writable_and_the_only_thing_visible() {
    let t = TestHost::start().await;
    t.run(volume_workload(false, VolumeSource::EmptyDir)).await;
    assert_eq!(t.get("files.test", "/").await, (200, "/data\n".into()));
    assert_eq!(t.get("files.test", "/note.txt").await.0, 404);
    let (status, body) = t.request("PUT", "files.test", "/note.txt", "kept").await;
    assert_eq!((status, body.as_str()), (200, "wrote 4 bytes\n"));
    // A new instance (a new request) sees what the last one wrote.
    assert_eq!(t.get("files.test", "/note.txt").await, (200, "kept".into()));
}

#[tokio::test]
async fn a_host_path_mounted_read_only_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "from the host").unwrap();
    let t = TestHost::start().await;
    t.run(volume_workload(
        true,
        VolumeSource::HostPath(dir.path().into()),
    ))
    .await;
    assert_eq!(
        t.get("files.test", "/hello.txt").await,
        (200, "from the host".into())
    );
    let (status, body) = t.request("PUT", "files.test", "/new.txt", "x").await;
    assert_eq!(status, 500);
    assert!(body.contains("write failed"), "{body}");
    assert!(!dir.path().join("new.txt").exists());
}

#[tokio::test]
async fn without_mounts_no_filesystem_is_visible() {
    let t = TestHost::start().await;
    t.run(http_workload(
        "bare",
        vec![component("files", "volume-http")],
    ))
    .await;
    // volume-http lists the preopened directories: there are none.
    assert_eq!(t.get("bare.test", "/").await, (200, String::new()));
}

/// A real upstream on loopback for outgoing requests.
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

#[tokio::test]
async fn outgoing_http_reaches_only_allowed_hosts() {
    let addr = upstream().await;
    let t = TestHost::start().await;
    let mut allowed = component("fetch", "fetch-http");
    allowed.allowed_hosts = vec!["127.0.0.1".into()];
    t.run(http_workload("allowed", vec![allowed])).await;
    t.run(http_workload(
        "denied",
        vec![component("fetch", "fetch-http")],
    ))
    .await;

    let path = format!("/?url=http://{addr}/");
    assert_eq!(
        t.get("allowed.test", &path).await,
        (200, "upstream says hi".into())
    );
    let (status, body) = t.get("denied.test", &path).await;
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
}
