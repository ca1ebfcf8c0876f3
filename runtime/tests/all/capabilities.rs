//! What components are given: wasi:config values and volumes. What they are refused is in the
//! isolation_* tests.

use std::collections::BTreeMap;

use crate::common::*;
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
    t.run(volume_workload(
        false,
        VolumeSource::EmptyDir { size_limit: None },
    ))
    .await;
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
