//! wasi:blobstore through a real component (`blob-http`) on the in-memory, filesystem and NATS
//! (a real nats-server, JetStream object store) backends: writing and reading objects as
//! streams, inclusive ranges, listing, deleting, namespaces kept apart, state that outlives the
//! host, and bad input answered as error values.

use std::sync::Arc;

use crate::common::*;
use weft_e2e::NatsServer;
use weft_runtime::WorkloadSpec;
use weft_runtime::plugins::Backends;
use weft_runtime::plugins::blobstore::backend::BlobBackend;
use weft_runtime::plugins::blobstore::filesystem::FilesystemBlobs;
use weft_runtime::plugins::blobstore::memory::MemoryBlobs;
use weft_runtime::plugins::blobstore::nats::NatsBlobs;
use weft_runtime::plugins::disk_quota::DiskQuota;
use weft_runtime::plugins::nats::NatsConnection;

/// `blob-http` answering `<name>.test` in `namespace`, on `backend`.
fn blobs(namespace: &str, name: &str, backend: &str) -> WorkloadSpec {
    let mut w = http_workload(name, vec![component("blobs", "blob-http")]);
    w.namespace = namespace.into();
    w.host_interfaces.push(interface(
        "wasi:blobstore/blobstore,container,types@0.2.0-draft",
        &[("backend", backend)],
    ));
    w
}

async fn host_with(backend: Option<Arc<dyn BlobBackend>>, staging: &std::path::Path) -> TestHost {
    TestHost::with(Options {
        backends: Backends {
            blobstore: backend.into_iter().collect(),
            blob_staging: staging.to_path_buf(),
            ..Default::default()
        },
        ..Options::default()
    })
    .await
}

/// Everything `blob-http` does, on one backend.
async fn assert_objects_work(t: &TestHost, host: &str) {
    let put = |path: &'static str, body: &'static str| t.request("PUT", host, path, body);
    assert_eq!(
        put("/photos/a.txt", "0123456789").await,
        (200, "stored 10 bytes in photos/a.txt\n".into())
    );
    assert_eq!(put("/photos/empty", "").await.0, 200);
    assert_eq!(put("/photos/with,comma=and~tilde", "x").await.0, 200);
    assert_eq!(
        t.get(host, "/photos/a.txt").await,
        (200, "0123456789".into())
    );
    assert_eq!(t.get(host, "/photos/empty").await, (200, "".into()));
    // Inclusive ranges, clamped to the object.
    assert_eq!(
        t.get(host, "/photos/a.txt?range=2-5").await,
        (200, "2345".into())
    );
    assert_eq!(
        t.get(host, "/photos/a.txt?range=7-100").await,
        (200, "789".into())
    );
    let (status, body) = t.get(host, "/photos/a.txt?range=20-30").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("range 20-30 is outside object a.txt of 10 bytes"),
        "{body}"
    );
    // Replacing an object.
    assert_eq!(put("/photos/a.txt", "new").await.0, 200);
    assert_eq!(t.get(host, "/photos/a.txt").await, (200, "new".into()));
    // Listing is a stream read ten at a time: more than one page.
    for n in 0..12 {
        let path: &'static str = Box::leak(format!("/photos/n{n:02}").into_boxed_str());
        assert_eq!(put(path, "n").await.0, 200);
    }
    let (_, listing) = t.get(host, "/photos").await;
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(names.len(), 15, "{listing}");
    assert!(
        names.contains(&"with,comma=and~tilde") && names.contains(&"n11"),
        "{listing}"
    );
    assert_eq!(t.request("DELETE", host, "/photos/a.txt", "").await.0, 200);
    let (status, body) = t.get(host, "/photos/a.txt").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("object a.txt does not exist in container photos"),
        "{body}"
    );
    assert_eq!(t.get(host, "/nothing/a").await.0, 404);
    // Bad names are error values, never traps.
    let (status, body) = t.request("PUT", host, "/..hidden/x", "x").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("invalid container name \"..hidden\""),
        "{body}"
    );
}

#[tokio::test]
async fn objects_stream_list_and_range_on_the_memory_backend_and_namespaces_never_share() {
    let staging = tempfile::tempdir().unwrap();
    let t = host_with(None, staging.path()).await;
    t.run(blobs("test", "b", "memory")).await;
    assert_objects_work(&t, "b.test").await;
    // Another namespace with the same container name sees none of it.
    t.run(blobs("other", "b2", "memory")).await;
    assert_eq!(t.get("b2.test", "/photos/n00").await.0, 404);
    assert_eq!(t.get("b.test", "/photos/n00").await, (200, "n".into()));
    // Deleting the container deletes its objects; nothing is left staged.
    assert_eq!(t.request("DELETE", "b.test", "/photos", "").await.0, 200);
    assert_eq!(t.get("b.test", "/photos").await.0, 404);
    assert_eq!(std::fs::read_dir(staging.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn objects_on_the_filesystem_backend_outlive_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join(".staging");
    let backend = || -> Arc<dyn BlobBackend> {
        Arc::new(FilesystemBlobs::new(
            dir.path(),
            DiskQuota::DEFAULT_PER_NAMESPACE,
        ))
    };
    {
        let t = host_with(Some(backend()), &staging).await;
        t.run(blobs("test", "b", "filesystem")).await;
        assert_objects_work(&t, "b.test").await;
        t.host.shutdown().await;
    }
    let t = host_with(Some(backend()), &staging).await;
    t.run(blobs("test", "b", "filesystem")).await;
    assert_eq!(t.get("b.test", "/photos/n03").await, (200, "n".into()));
    assert!(dir.path().join("test/photos").is_dir());
    assert_eq!(
        std::fs::read_dir(&staging).unwrap().count(),
        0,
        "nothing left staged"
    );
}

/// On the filesystem backend a namespace keeps at most its disk quota (counted in blocks, with
/// its containers), a full quota is an error value to that namespace only, and deleting frees
/// it: one tenant cannot fill the agent's data volume.
#[tokio::test]
async fn a_namespace_fills_only_its_own_disk_quota_on_the_filesystem_backend() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join(".staging");
    let backend: Arc<dyn BlobBackend> = Arc::new(FilesystemBlobs::new(dir.path(), 8 * 4096));
    let t = host_with(Some(backend), &staging).await;
    t.run(blobs("greedy", "b", "filesystem")).await;
    t.run(blobs("quiet", "q", "filesystem")).await;
    let big = "x".repeat(3 * 4096);
    // The container (a block) and the object (three, and one for its entry).
    assert_eq!(t.request("PUT", "b.test", "/photos/a", &big).await.0, 200);
    let (status, body) = t.request("PUT", "b.test", "/photos/b", &big).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("namespace greedy would keep more than 32768 bytes"),
        "{body}"
    );
    assert_eq!(t.get("b.test", "/photos/b").await.0, 404);
    assert_eq!(t.request("PUT", "q.test", "/photos/a", &big).await.0, 200);
    // Deleting gives the room back.
    assert_eq!(t.request("DELETE", "b.test", "/photos/a", "").await.0, 200);
    assert_eq!(t.request("PUT", "b.test", "/photos/b", &big).await.0, 200);
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_on_nats_outlive_the_host_and_a_nats_restart() {
    let mut nats = NatsServer::start();
    let staging = tempfile::tempdir().unwrap();
    let backend = |nats: &NatsServer| -> Arc<dyn BlobBackend> {
        Arc::new(NatsBlobs::new(NatsConnection::new(&nats.url()).unwrap()))
    };
    {
        let t = host_with(Some(backend(&nats)), staging.path()).await;
        t.run(blobs("test", "b", "nats")).await;
        assert_objects_work(&t, "b.test").await;
        t.host.shutdown().await;
    }
    nats.restart();
    let t = host_with(Some(backend(&nats)), staging.path()).await;
    t.run(blobs("test", "b", "nats")).await;
    assert_eq!(t.get("b.test", "/photos/n03").await, (200, "n".into()));
    // The object store, as docs/blobstore.md names it, seen by NATS's own client.
    let mut ls = nats.client();
    ls.args(["object", "ls"]);
    let output = tokio::task::spawn_blocking(move || ls.output().unwrap())
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(listed.contains("weft_test_photos"), "{listed}");
    // While NATS is down: an error value naming it, and the host serves the rest.
    nats.stop();
    let (status, body) = t.get("b.test", "/photos/n03").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("nats backend"), "{body}");
}

#[tokio::test]
async fn a_backend_the_host_does_not_offer_refuses_the_workload() {
    let staging = tempfile::tempdir().unwrap();
    let t = host_with(None, staging.path()).await;
    let err = t
        .host
        .start_workload(blobs("test", "b", "s3"))
        .await
        .unwrap_err()
        .to_chain();
    assert!(
        err.contains(
            "wasi:blobstore backend \"s3\" is not offered by this host (it offers memory)"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn the_memory_backend_holds_a_bounded_amount_per_namespace() {
    let staging = tempfile::tempdir().unwrap();
    // A host whose memory blob store holds, per namespace, container "c" and 16 bytes of an
    // object "a" (it replaces the default): containers and object names count too.
    let container = weft_runtime::plugins::blobstore::backend::ContainerName::new("test", "c")
        .unwrap()
        .physical()
        .len() as u64;
    let quota = 128 + container + 64 + 1 + 16;
    let t = host_with(Some(Arc::new(MemoryBlobs::new(quota))), staging.path()).await;
    t.run(blobs("test", "b", "memory")).await;
    t.run(blobs("other", "b2", "memory")).await;
    assert_eq!(
        t.request("PUT", "b.test", "/c/a", "0123456789").await.0,
        200
    );
    let (status, body) = t.request("PUT", "b.test", "/c/b", "0123456789").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains(&format!(
            "namespace test would hold more than {quota} bytes in the memory blobstore"
        )),
        "{body}"
    );
    // Replacing an object counts only the difference; another namespace has its own room.
    assert_eq!(
        t.request("PUT", "b.test", "/c/a", "0123456789abcdef")
            .await
            .0,
        200
    );
    assert_eq!(
        t.request("PUT", "b2.test", "/c/a", "0123456789").await.0,
        200
    );
    // Nothing failed half-way: the refused object is absent, the rest intact.
    assert_eq!(t.get("b.test", "/c/b").await.0, 404);
    assert_eq!(
        t.get("b.test", "/c/a").await,
        (200, "0123456789abcdef".into())
    );
}

/// Values being written count against their namespace's staging quota whatever the backend,
/// so a guest cannot fill the agent's disk with objects it never finishes; a refused write
/// is an error value naming the quota, and what it staged is given back.
#[tokio::test]
async fn values_being_written_count_against_the_staging_quota() {
    let staging = tempfile::tempdir().unwrap();
    let t = TestHost::with(Options {
        backends: Backends {
            blob_staging: staging.path().to_path_buf(),
            blob_staging_quota: 8 * 4096,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    t.run(blobs("greedy", "b", "memory")).await;
    t.run(blobs("quiet", "q", "memory")).await;
    let (status, body) = t
        .request("PUT", "b.test", "/photos/big", &"x".repeat(10 * 4096))
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("namespace greedy would keep more than 32768 bytes in the staging backend"),
        "{body}"
    );
    assert_eq!(t.get("b.test", "/photos/big").await.0, 404);
    // What the refused write staged was given back: smaller writes go on fitting.
    let small = "x".repeat(5 * 4096);
    for n in 0..4 {
        let path: &'static str = Box::leak(format!("/photos/s{n}").into_boxed_str());
        assert_eq!(t.request("PUT", "b.test", path, &small).await.0, 200);
    }
    assert_eq!(t.request("PUT", "q.test", "/photos/s", &small).await.0, 200);
    assert_eq!(std::fs::read_dir(staging.path()).unwrap().count(), 0);
}

/// Writes `bytes` to a staging file in `dir`, as the plugin does before `write`.
fn staged(dir: &std::path::Path, bytes: &[u8]) -> tempfile::TempPath {
    use std::io::Write;
    let (mut file, path) = weft_runtime::plugins::blobstore::staging::staging_file(dir).unwrap();
    file.write_all(bytes).unwrap();
    path
}

#[tokio::test]
async fn an_object_replaced_while_it_is_read_is_an_error_and_the_store_serves_on() {
    use tokio::io::AsyncReadExt;
    use weft_runtime::plugins::blobstore::backend::ContainerName;
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBlobs::default();
    let mine = ContainerName::new("a", "c").unwrap();
    backend.create_container(&mine).await.unwrap();
    backend
        .write(&mine, "o", staged(dir.path(), b"0123456789"), 10)
        .await
        .unwrap();
    // A reader sized the object at 10 bytes (`get-data` looks first); another invocation
    // replaces it with 2 bytes before the read. Sliced as sized, this panicked under the store's
    // lock, and every namespace's next call panicked on the poisoned lock.
    backend
        .write(&mine, "o", staged(dir.path(), b"xy"), 2)
        .await
        .unwrap();
    let err = match backend.read(&mine, "o", 0, 10).await {
        Ok(_) => panic!("read 10 bytes of a 2-byte object"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("changed while it was being read"), "{err}");
    // The store serves on, for this namespace and another.
    let theirs = ContainerName::new("b", "c").unwrap();
    backend.create_container(&theirs).await.unwrap();
    let mut read = String::new();
    let mut reader = backend.read(&mine, "o", 0, 2).await.unwrap();
    reader.read_to_string(&mut read).await.unwrap();
    assert_eq!(read, "xy");
}

#[tokio::test]
async fn writers_racing_past_the_memory_quota_store_at_most_the_quota() {
    use weft_runtime::plugins::blobstore::backend::ContainerName;
    let dir = tempfile::tempdir().unwrap();
    // Room for one 600-byte object, not two: eight writers at once, each checking the quota.
    let backend = Arc::new(MemoryBlobs::new(1000));
    let c = ContainerName::new("a", "c").unwrap();
    backend.create_container(&c).await.unwrap();
    let writes = (0..8).map(|i| {
        let (backend, c, path) = (backend.clone(), c.clone(), staged(dir.path(), &[b'x'; 600]));
        async move { backend.write(&c, &format!("o{i}"), path, 600).await }
    });
    let stored = futures::future::join_all(writes)
        .await
        .into_iter()
        .filter(Result::is_ok)
        .count();
    assert_eq!(stored, 1, "only one 600-byte object fits in 1000 bytes");
    assert_eq!(backend.list_objects(&c).await.unwrap().len(), 1);
}
