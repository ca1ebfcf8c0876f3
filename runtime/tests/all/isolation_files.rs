//! Attacks on the filesystem: hostPath outside what the host operator allows or onto the host's
//! own state, a planted compiled artifact. And what emptyDir promises: its data survives an
//! update, goes when the workload stops, and stops growing at its sizeLimit.

use std::path::{Path, PathBuf};

use crate::common::*;
use weft_runtime::{Engine, MountSpec, VolumeSource, VolumeSpec, WorkloadSpec};

fn files(name: &str, source: VolumeSource) -> WorkloadSpec {
    let mut c = component("files", "volume-http");
    c.mounts = vec![MountSpec {
        volume: "data".into(),
        path: "/data".into(),
        read_only: false,
    }];
    let mut w = http_workload(name, vec![c]);
    w.volumes = vec![VolumeSpec {
        name: "data".into(),
        source,
    }];
    w
}

async fn refusal(t: &TestHost, w: WorkloadSpec) -> String {
    t.host.start_workload(w).await.unwrap_err().to_chain()
}

#[tokio::test]
async fn a_host_path_outside_the_allowed_prefixes_is_refused() {
    let allowed = tempfile::tempdir().unwrap();
    let t = TestHost::with(Options {
        host_path_prefixes: vec![allowed.path().into()],
        ..Options::default()
    })
    .await;
    // The host-agent's ServiceAccount token lives here in a Pod; /etc stands in for it here.
    for path in ["/var/run/secrets/kubernetes.io/serviceaccount", "/etc", "/"] {
        let err = refusal(&t, files("steal", VolumeSource::HostPath(path.into()))).await;
        assert!(err.contains("volume data"), "{err}");
        assert!(
            err.contains("not under a prefix this host allows")
                || err.contains("cannot be opened")
                || err.contains("overlaps the host's own directory"),
            "{path}: {err}"
        );
    }
    // A symlink inside an allowed prefix does not lead out of it.
    std::os::unix::fs::symlink("/etc", allowed.path().join("etc")).unwrap();
    let err = refusal(
        &t,
        files("steal", VolumeSource::HostPath(allowed.path().join("etc"))),
    )
    .await;
    assert!(err.contains("not under a prefix"), "{err}");
    // Nothing was started.
    assert!(t.host.status("test/steal").await.is_none());

    let none = TestHost::with(Options {
        host_path_prefixes: Vec::new(),
        ..Options::default()
    })
    .await;
    let err = refusal(
        &none,
        files("any", VolumeSource::HostPath(allowed.path().into())),
    )
    .await;
    assert!(err.contains("allowed: none"), "{err}");
}

#[tokio::test]
async fn a_host_path_onto_the_hosts_own_state_is_refused_even_under_an_allowed_prefix() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("compiled");
    let data = root.path().join("data");
    let t = TestHost::with(Options {
        engine: Some(
            Engine::builder()
                .max_instances(10)
                .cache_dir(&cache)
                .build()
                .unwrap(),
        ),
        data_dir: Some(data.clone()),
        host_path_prefixes: vec![root.path().into()],
        ..Options::default()
    })
    .await;
    std::fs::create_dir_all(&data).unwrap();
    for own in [&cache, &data, &root.path().to_path_buf()] {
        let err = refusal(&t, files("plant", VolumeSource::HostPath(own.clone()))).await;
        assert!(err.contains("overlaps the host's own directory"), "{err}");
    }
}

fn empty_dir_root(data: &Path, workload: &str) -> PathBuf {
    data.join("emptydir").join(workload.replace('/', "_"))
}

#[tokio::test]
async fn empty_dir_data_survives_an_update_and_goes_with_the_workload() {
    let data = tempfile::tempdir().unwrap();
    let t = TestHost::with(Options {
        data_dir: Some(data.path().into()),
        ..Options::default()
    })
    .await;
    let workload = || files("notes", VolumeSource::EmptyDir { size_limit: None });
    t.run(workload()).await;
    let (status, _) = t.request("PUT", "notes.test", "/note.txt", "kept").await;
    assert_eq!(status, 200);
    let dir = empty_dir_root(data.path(), "test/notes");
    assert!(dir.join("data/note.txt").is_file());

    // An update (a new version of the same workload) sees the same data.
    let mut updated = workload();
    updated.components[0]
        .env
        .push(("VERSION".into(), "2".into()));
    t.run(updated).await;
    assert_eq!(t.get("notes.test", "/note.txt").await, (200, "kept".into()));

    t.host.stop_workload("test/notes").await.unwrap();
    assert!(!dir.exists(), "{} is still there", dir.display());
}

#[tokio::test]
async fn an_empty_dir_over_its_size_limit_turns_read_only_and_keeps_its_data() {
    let t = TestHost::start().await;
    t.run(files(
        "quota",
        VolumeSource::EmptyDir {
            size_limit: Some(1 << 20),
        },
    ))
    .await;
    let chunk = "x".repeat(700 << 10);
    assert_eq!(t.request("PUT", "quota.test", "/a", &chunk).await.0, 200);
    // Measured before this write: 700 KiB is under the limit, so it may still write...
    assert_eq!(t.request("PUT", "quota.test", "/b", &chunk).await.0, 200);
    // ...and now it is over: writes fail, reads go on.
    let (status, body) = t.request("PUT", "quota.test", "/c", "more").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("write failed"), "{body}");
    assert_eq!(t.get("quota.test", "/a").await.1.len(), chunk.len());
}

#[tokio::test]
async fn a_planted_compiled_artifact_is_compiled_again_never_run() {
    let cache = tempfile::tempdir().unwrap();
    let engine = || {
        Engine::builder()
            .max_instances(10)
            .cache_dir(cache.path())
            .build()
            .unwrap()
    };
    // The host compiles hello-http and caches it, with its MAC.
    let hello = engine().compile("hello", &wasm("hello-http")).unwrap();
    let entries: Vec<PathBuf> = walk(cache.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1);
    let genuine = std::fs::read(&entries[0]).unwrap();

    // An attacker who can write the cache plants artifacts under greeter's digest: a genuine
    // entry of another component, and a forged one.
    let greeter = wasm("greet-http");
    let digest = weft_runtime::sha256(&greeter);
    let planted = entries[0].with_file_name(format!("{}.cwasm", digest.replace(':', "-")));
    for content in [genuine.clone(), b"\x7fELF forged native code".to_vec()] {
        std::fs::write(&planted, &content).unwrap();
        let compiled = engine().compile("greet", &greeter).unwrap();
        assert!(!compiled.from_cache(), "a planted artifact was loaded");
        // Had hello-http's code been loaded, greet-http's import would be missing.
        assert!(
            compiled
                .code
                .info
                .imports
                .iter()
                .any(|i| i.starts_with("weft:examples/greet"))
        );
        assert_ne!(compiled.code.info.imports, hello.code.info.imports);
        // What the host wrote now is its own, and loads.
        assert!(engine().compile("greet", &greeter).unwrap().from_cache());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
