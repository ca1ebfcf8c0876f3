//! wasi:keyvalue through a real component (`kv-counter-http`) on the in-memory, filesystem and
//! Redis (a real redis-server) backends: counting, atomic increments under contention, namespace scoping, named entries,
//! paging, state that outlives the host, and bad input answered as the WIT's error values.

use std::sync::Arc;

use crate::common::*;
use weft_e2e::{NatsServer, RedisServer};
use weft_runtime::WorkloadSpec;
use weft_runtime::plugins::Backends;
use weft_runtime::plugins::disk_quota::DiskQuota;
use weft_runtime::plugins::keyvalue::backend::KeyValueBackend;
use weft_runtime::plugins::keyvalue::filesystem::FilesystemKeyValue;
use weft_runtime::plugins::keyvalue::nats::NatsKeyValue;
use weft_runtime::plugins::keyvalue::redis::RedisKeyValue;
use weft_runtime::plugins::nats::NatsConnection;

/// The counter in namespace `namespace`, its keyvalue entry configured by `config`.
fn counter(namespace: &str, name: &str, config: &[(&str, &str)]) -> WorkloadSpec {
    let mut c = component("counter", "kv-counter-http");
    c.limits.max_concurrency = 16;
    let mut w = http_workload(name, vec![c]);
    w.namespace = namespace.into();
    w.host_interfaces.push(interface(
        "wasi:keyvalue/store,atomics,batch@0.2.0-draft",
        config,
    ));
    w
}

/// Sends 50 increments of key `hits` at once and checks each value 1..=50 came back once.
async fn assert_fifty_increments_are_atomic(t: &Arc<TestHost>, host: &'static str) {
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.get(host, "/incr?key=hits").await })
        })
        .collect();
    let mut seen = Vec::new();
    for r in requests {
        let (status, body) = r.await.unwrap();
        assert_eq!(status, 200, "{host}: {body}");
        seen.push(body.trim().parse::<u64>().unwrap());
    }
    seen.sort();
    assert_eq!(seen, (1..=50).collect::<Vec<_>>(), "{host}");
}

async fn host_with_filesystem(dir: &std::path::Path) -> TestHost {
    host_with(Arc::new(FilesystemKeyValue::new(
        dir,
        DiskQuota::DEFAULT_PER_NAMESPACE,
    )))
    .await
}

/// One tenant writing until the disk is full would get the agent's Pod evicted, every tenant's
/// data and Workloads with it: on the filesystem backend a namespace keeps at most its quota,
/// a full quota is an error value to that namespace only, and deleting frees it.
#[tokio::test]
async fn a_namespace_fills_only_its_own_disk_quota_on_the_filesystem_backend() {
    let dir = tempfile::tempdir().unwrap();
    // Room for the bucket and a few small keys.
    let t = host_with(Arc::new(FilesystemKeyValue::new(dir.path(), 8 * 4096))).await;
    t.run(counter("greedy", "g", &[("backend", "filesystem")]))
        .await;
    t.run(counter("quiet", "q", &[("backend", "filesystem")]))
        .await;
    let big = "x".repeat(3 * 4096);
    assert_eq!(t.request("PUT", "g.test", "/set?key=a", &big).await.0, 200);
    let (status, body) = t.request("PUT", "g.test", "/set?key=b", &big).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("namespace greedy would keep more than 32768 bytes"),
        "{body}"
    );
    // Small keys, one block each with their entry, fill it up to the quota and no further.
    let mut stored = 0;
    for i in 0..20 {
        if t.request("PUT", "g.test", &format!("/set?key=k{i}"), "v")
            .await
            .0
            == 200
        {
            stored += 1;
        }
    }
    assert_eq!(stored, 1, "8 blocks: the bucket, 4 for `a`, 2 for k0");
    // Another namespace is untouched by it.
    assert_eq!(t.request("PUT", "q.test", "/set?key=a", &big).await.0, 200);
    // What was refused is not on disk, and the rest reads back.
    assert_eq!(t.get("g.test", "/get?key=b").await.0, 404);
    assert_eq!(
        t.get("g.test", "/get?key=a").await.1.trim().len(),
        big.len()
    );
}

#[tokio::test]
async fn a_counter_counts_and_lists_on_the_memory_backend() {
    let t = TestHost::start().await;
    t.run(counter("test", "kv", &[])).await;
    for n in 1..=3 {
        assert_eq!(
            t.get("kv.test", "/incr?key=count").await,
            (200, format!("{n}\n"))
        );
    }
    assert_eq!(
        t.get("kv.test", "/get?key=count").await,
        (200, "3\n".into())
    );
    assert_eq!(t.get("kv.test", "/get?key=nothing").await.0, 404);
    assert_eq!(
        t.request("PUT", "kv.test", "/set?key=colour", "blue")
            .await
            .0,
        200
    );
    // get-many answers in the order asked, absent keys too.
    assert_eq!(
        t.get("kv.test", "/many?keys=nothing,colour,count").await,
        (200, "nothing=-\ncolour=blue\ncount=3\n".into())
    );
    assert_eq!(
        t.get("kv.test", "/keys").await,
        (200, "colour\ncount\n".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increments_are_atomic_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let t = Arc::new(host_with_filesystem(dir.path()).await);
    t.run(counter("test", "mem", &[])).await;
    t.run(counter("test", "fs", &[("backend", "filesystem")]))
        .await;
    for host in ["mem.test", "fs.test"] {
        assert_fifty_increments_are_atomic(&t, host).await;
    }
}

#[tokio::test]
async fn buckets_are_scoped_to_the_namespace() {
    let t = TestHost::start().await;
    t.run(counter("team-a", "a1", &[])).await;
    t.run(counter("team-a", "a2", &[])).await;
    t.run(counter("team-b", "b1", &[])).await;
    assert_eq!(t.get("a1.test", "/incr?key=n").await.1, "1\n");
    // Same namespace, same bucket: shared.
    assert_eq!(t.get("a2.test", "/incr?key=n").await.1, "2\n");
    // Another namespace opening the same bucket name sees none of it.
    assert_eq!(t.get("b1.test", "/get?key=n").await.0, 404);
    assert_eq!(t.get("b1.test", "/incr?key=n").await.1, "1\n");
}

#[tokio::test]
async fn filesystem_state_outlives_the_host() {
    let dir = tempfile::tempdir().unwrap();
    {
        let t = host_with_filesystem(dir.path()).await;
        t.run(counter("test", "kv", &[("backend", "filesystem")]))
            .await;
        assert_eq!(t.get("kv.test", "/incr?key=visits").await.1, "1\n");
        assert_eq!(t.get("kv.test", "/incr?key=visits").await.1, "2\n");
        t.host.shutdown().await;
    }
    // A new host process on the same directory.
    let t = host_with_filesystem(dir.path()).await;
    t.run(counter("test", "kv", &[("backend", "filesystem")]))
        .await;
    assert_eq!(t.get("kv.test", "/incr?key=visits").await.1, "3\n");
    // Laid out by namespace and bucket.
    assert!(dir.path().join("test/counter").is_dir());
}

#[tokio::test]
async fn a_named_entry_routes_open_to_its_own_backend_and_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let t = host_with_filesystem(dir.path()).await;
    let mut w = counter("test", "kv", &[]);
    let mut cache = interface(
        "wasi:keyvalue/store,atomics,batch@0.2.0-draft",
        &[("backend", "filesystem"), ("bucket", "shared-cache")],
    );
    cache.name = Some("cache".into());
    w.host_interfaces.push(cache);
    t.run(w).await;
    assert_eq!(t.get("kv.test", "/incr?key=k&bucket=cache").await.1, "1\n");
    assert!(dir.path().join("test/shared-cache").is_dir());
    // The unnamed entry (memory) counts on its own.
    assert_eq!(t.get("kv.test", "/incr?key=k").await.1, "1\n");
}

#[tokio::test]
async fn list_keys_pages_with_a_cursor() {
    let t = TestHost::start().await;
    t.run(counter("test", "kv", &[])).await;
    for i in 0..250 {
        let (status, _) = t
            .request("PUT", "kv.test", &format!("/set?key=k{i:03}"), "v")
            .await;
        assert_eq!(status, 200);
    }
    let (status, body) = t.get("kv.test", "/keys").await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = body.lines().collect();
    assert_eq!(keys.len(), 250);
    assert_eq!(keys[0], "k000");
    assert_eq!(keys[249], "k249");
}

#[tokio::test]
async fn bad_input_gets_error_values_or_a_refusal() {
    let t = TestHost::start().await;
    t.run(counter("test", "kv", &[])).await;
    for bucket in ["..", "a%2Fb", &"x".repeat(64)] {
        let (status, body) = t
            .get("kv.test", &format!("/incr?key=k&bucket={bucket}"))
            .await;
        assert_eq!(status, 500, "{bucket}: {body}");
        assert!(body.contains("invalid bucket name"), "{bucket}: {body}");
    }
    // A value that is not a number cannot be incremented: an error value, not a trap.
    t.request("PUT", "kv.test", "/set?key=word", "hello").await;
    let (status, body) = t.get("kv.test", "/incr?key=word").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("not a decimal number"), "{body}");
    // A backend the host does not offer: the Workload is refused, naming what is offered.
    let err = t
        .host
        .start_workload(counter("test", "redis", &[("backend", "redis")]))
        .await
        .unwrap_err()
        .to_chain();
    assert!(
        err.contains("backend \"redis\" is not offered by this host (it offers memory)"),
        "{err}"
    );
}

async fn host_with(backend: Arc<dyn KeyValueBackend>) -> TestHost {
    TestHost::with(Options {
        backends: Backends {
            keyvalue: vec![backend],
            ..Default::default()
        },
        ..Options::default()
    })
    .await
}

/// Fifty concurrent increments on `backend`, then another host on a new connection (a
/// restarted or a different one) finds the same state.
async fn assert_atomic_and_outlives_the_host(
    make: impl Fn() -> Arc<dyn KeyValueBackend>,
    backend: &str,
) {
    let config = [("backend", backend)];
    {
        let t = Arc::new(host_with(make()).await);
        t.run(counter("test", "kv", &config)).await;
        assert_fifty_increments_are_atomic(&t, "kv.test").await;
        t.host.shutdown().await;
    }
    let t = host_with(make()).await;
    t.run(counter("test", "kv", &config)).await;
    assert_eq!(t.get("kv.test", "/incr?key=hits").await.1, "51\n");
    assert_eq!(
        t.request("PUT", "kv.test", "/set?key=colour", "blue")
            .await
            .0,
        200
    );
    assert_eq!(
        t.get("kv.test", "/many?keys=colour,nothing").await.1,
        "colour=blue\nnothing=-\n"
    );
    let (_, keys) = t.get("kv.test", "/keys").await;
    let mut keys: Vec<&str> = keys.lines().collect();
    keys.sort();
    assert_eq!(keys, ["colour", "hits"]);
}

/// A host with the counter on `backend` and hello-http, having counted once.
async fn counting_host(backend: Arc<dyn KeyValueBackend>, name: &str) -> TestHost {
    let t = host_with(backend).await;
    t.run(counter("test", "kv", &[("backend", name)])).await;
    t.run(http_workload(
        "hello",
        vec![component("hello", "hello-http")],
    ))
    .await;
    assert_eq!(t.get("kv.test", "/incr?key=n").await.1, "1\n");
    t
}

/// While the backend is down: error values naming it, and the host serves the rest.
async fn assert_down(t: &TestHost, backend: &str) {
    let (status, body) = t.get("kv.test", "/incr?key=n").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains(&format!("{backend} backend")), "{body}");
    assert_eq!(t.get("hello.test", "/").await.0, 200);
}

/// Back without restarting the host; answers what `/incr` answers once it is.
async fn recovered(t: &TestHost) -> String {
    eventually(
        "the backend to recover",
        std::time::Duration::from_secs(20),
        || async {
            let (status, body) = t.get("kv.test", "/incr?key=n").await;
            (status == 200).then_some(body)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_on_redis_is_atomic_and_outlives_the_host() {
    let redis = RedisServer::start();
    assert_atomic_and_outlives_the_host(
        || {
            Arc::new(
                RedisKeyValue::new(&redis.url(), RedisKeyValue::DEFAULT_PER_NAMESPACE).unwrap(),
            )
        },
        "redis",
    )
    .await;
}

#[tokio::test]
async fn a_redis_outage_costs_errors_not_the_host_and_it_recovers() {
    let mut redis = RedisServer::start();
    let t = counting_host(
        Arc::new(RedisKeyValue::new(&redis.url(), RedisKeyValue::DEFAULT_PER_NAMESPACE).unwrap()),
        "redis",
    )
    .await;
    redis.stop();
    assert_down(&t, "redis").await;
    // The server kept nothing: it persists nothing here.
    redis.restart();
    recovered(&t).await;
}

/// A shared Redis is every tenant's: each namespace keeps at most its quota there, counted on
/// the server in the same step as the write, so two hosts sharing it hold one count; a full
/// quota is an error value to that namespace only, for a new counter too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_keeps_at_most_its_quota_on_a_shared_redis() {
    let redis = RedisServer::start();
    let backend =
        || -> Arc<dyn KeyValueBackend> { Arc::new(RedisKeyValue::new(&redis.url(), 400).unwrap()) };
    let (first, second) = (host_with(backend()).await, host_with(backend()).await);
    let config = [("backend", "redis")];
    first.run(counter("greedy", "g", &config)).await;
    second.run(counter("greedy", "g", &config)).await;
    first.run(counter("quiet", "q", &config)).await;
    let value = "x".repeat(200);
    assert_eq!(
        first.request("PUT", "g.test", "/set?key=a", &value).await.0,
        200
    );
    // The other host counts what the first stored.
    let (status, body) = second.request("PUT", "g.test", "/set?key=b", &value).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("namespace greedy is over its 400 bytes in the redis backend"),
        "{body}"
    );
    let (status, body) = second.get("g.test", "/incr?key=new").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("over its 400 bytes"), "{body}");
    // Replacing with fewer bytes always fits; another namespace has its own room.
    assert_eq!(
        second
            .request("PUT", "g.test", "/set?key=a", "small")
            .await
            .0,
        200
    );
    assert_eq!(
        first.request("PUT", "q.test", "/set?key=a", &value).await.0,
        200
    );
    assert_eq!(
        second.get("g.test", "/incr?key=new").await,
        (200, "1\n".into())
    );
    assert_eq!(first.get("g.test", "/get?key=b").await.0, 404);
}

fn nats_kv(nats: &NatsServer) -> Arc<dyn KeyValueBackend> {
    Arc::new(NatsKeyValue::new(NatsConnection::new(&nats.url()).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_on_nats_is_atomic_and_outlives_the_host() {
    let nats = NatsServer::start();
    assert_atomic_and_outlives_the_host(|| nats_kv(&nats), "nats").await;
    // The JetStream bucket, as docs/keyvalue.md names it, seen by NATS's own client.
    let output = nats.client().args(["kv", "ls"]).output().unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(listed.contains("weft_test_counter"), "{listed}");
}

#[tokio::test]
async fn a_nats_restart_costs_errors_not_the_host_and_keeps_the_count() {
    let mut nats = NatsServer::start();
    let t = counting_host(nats_kv(&nats), "nats").await;
    nats.stop();
    assert_down(&t, "nats").await;
    // JetStream keeps the bucket on disk: the count goes on where it was.
    nats.restart();
    assert_eq!(recovered(&t).await, "2\n");
}

#[tokio::test]
async fn bad_keys_and_bucket_names_are_error_values_on_nats() {
    let nats = NatsServer::start();
    let t = host_with(nats_kv(&nats)).await;
    t.run(counter("test", "kv", &[("backend", "nats")])).await;
    let (status, body) = t.get("kv.test", "/incr?key=").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("keys are 1 to 512 bytes on the nats backend"),
        "{body}"
    );
    let (status, body) = t.get("kv.test", "/incr?key=x&bucket=..").await;
    assert_eq!(status, 500);
    assert!(body.contains("invalid bucket name"), "{body}");
    // Namespaces never share a bucket on the shared server.
    assert_eq!(t.get("kv.test", "/incr?key=x").await.1, "1\n");
    t.run(counter("other", "kv2", &[("backend", "nats")])).await;
    assert_eq!(t.get("kv2.test", "/incr?key=x").await.1, "1\n");
}
