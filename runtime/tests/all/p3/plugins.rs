//! Every plugin over WASI 0.3: outgoing HTTP through 0.3's `client` under the same egress rules,
//! and the interfaces with no 0.3 version yet (config, logging, keyvalue, blobstore, messaging)
//! plus 0.3's own filesystem, linked into one 0.3 component (`plugins-p3`).

use std::sync::Arc;

use futures::StreamExt;
use weft_e2e::NatsServer;
use weft_runtime::plugins::Backends;
use weft_runtime::plugins::messaging::nats::NatsMessaging;
use weft_runtime::plugins::nats::NatsConnection;
use weft_runtime::{MountSpec, VolumeSource, VolumeSpec};

use super::*;

#[tokio::test]
async fn outgoing_requests_go_only_where_egress_allows() {
    let addr = upstream().await;
    let t = TestHost::with(Options {
        egress_allow: vec!["127.0.0.1/32".parse().unwrap()],
        ..Options::default()
    })
    .await;
    let mut allowed = component("faulty", "faulty-p3");
    allowed.allowed_hosts = vec!["127.0.0.1".into()];
    t.run(p3_workload("allowed", vec![allowed])).await;
    t.run(p3_workload(
        "denied",
        vec![component("faulty", "faulty-p3")],
    ))
    .await;
    let path = format!("/fetch?url=http://{addr}/");
    assert_eq!(
        t.get("allowed.test", &path).await,
        (200, "200 upstream says hi".into())
    );
    let (status, body) = t.get("denied.test", &path).await;
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");

    // Allowed by name, loopback is still the host's own unless the operator allows it.
    let strict = TestHost::start().await;
    let mut attacker = component("faulty", "faulty-p3");
    attacker.allowed_hosts = vec!["127.0.0.1".into(), "localhost".into()];
    strict.run(p3_workload("attacker", vec![attacker])).await;
    for url in [
        format!("http://{addr}/"),
        format!("http://localhost:{}/", addr.port()),
    ] {
        let (status, body) = strict
            .get("attacker.test", &format!("/fetch?url={url}"))
            .await;
        assert_eq!(status, 502, "{url}: {body}");
        assert!(body.contains("DestinationIpProhibited"), "{url}: {body}");
    }
}

/// `plugins-p3` with the greeting `hi`, a keyvalue and a blobstore entry, messaging on `backend`,
/// and an emptyDir at `/data`.
fn plugins(backend: &str) -> WorkloadSpec {
    let mut c = component("plugins", "plugins-p3");
    c.config.insert("greeting".into(), "hi".into());
    c.mounts = vec![MountSpec {
        volume: "data".into(),
        path: "/data".into(),
        read_only: false,
    }];
    let mut w = p3_workload("plugins", vec![c]);
    w.host_interfaces.extend([
        interface("wasi:keyvalue/store,atomics@0.2.0-draft", &[]),
        interface("wasi:blobstore/blobstore@0.2.0-draft", &[]),
        interface(
            "wasmcloud:messaging/consumer@0.2.0",
            &[("backend", backend)],
        ),
    ]);
    w.volumes = vec![VolumeSpec {
        name: "data".into(),
        source: VolumeSource::EmptyDir { size_limit: None },
    }];
    w
}

#[tokio::test]
async fn every_plugin_links_into_a_p3_component() {
    let nats = NatsServer::start();
    let t = TestHost::with(Options {
        backends: Backends {
            messaging: vec![Arc::new(NatsMessaging::new(
                NatsConnection::new(&nats.url()).unwrap(),
            ))],
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    t.run(plugins("nats")).await;

    // wasi:config, wasi:keyvalue and wasi:logging.
    assert_eq!(
        t.get("plugins.test", "/incr?key=a").await,
        (200, "hi a=1\n".into())
    );
    assert_eq!(
        t.get("plugins.test", "/incr?key=a").await,
        (200, "hi a=2\n".into())
    );

    // wasi:blobstore, with 0.2's io streams inside a 0.3 component.
    let (status, body) = t
        .request("PUT", "plugins.test", "/blob/note", "kept in a blob")
        .await;
    assert_eq!((status, body.as_str()), (200, "stored 14 bytes\n"));
    assert_eq!(
        t.get("plugins.test", "/blob/note").await,
        (200, "kept in a blob".into())
    );

    // wasi:filesystem@0.3 on the Workload's emptyDir.
    let (status, body) = t
        .request("PUT", "plugins.test", "/file/a.txt", "on disk")
        .await;
    assert_eq!((status, body.as_str()), (200, "wrote 7 bytes\n"));
    assert_eq!(
        t.get("plugins.test", "/file/a.txt").await,
        (200, "on disk".into())
    );
    let (status, body) = t.get("plugins.test", "/file/../../etc/passwd").await;
    assert_eq!(status, 500, "{body}");

    // wasmcloud:messaging on a real nats-server, inside the Workload's namespace.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut sub = client.subscribe("test.p3.hello").await.unwrap();
    client.flush().await.unwrap();
    let (status, body) = t
        .request("POST", "plugins.test", "/publish/p3.hello", "from p3")
        .await;
    assert_eq!((status, body.as_str()), (200, "published to p3.hello\n"));
    let message = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a message within 10 s")
        .unwrap();
    assert_eq!(&message.payload[..], b"from p3");
}
