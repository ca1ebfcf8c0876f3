//! `make bench-cluster`: control-plane figures on a real API server with two host-agents —
//! `kubectl apply` to the first successful response (uncached, then cached image), a
//! 3-replica WorkloadDeployment from apply to every replica answering and through a rolling
//! update, how long N Workloads (default 200) take to become Ready, and what they cost idle (the
//! operator's reconciliations, the API server's requests); then the scale group (`scale.rs`,
//! `SCALE=N`). `BENCH_CLUSTER_GROUPS=basic` or `=scale` runs one of the two. Not part of
//! `make test`.

mod scale;

use std::time::{Duration, Instant};

use weft_e2e::Cluster;
use weft_e2e::cluster::http_get;
use weft_e2e::process::workspace_root;

/// Small limits: 100 Workloads per host must fit its memory budget (each reserves
/// memory × maxConcurrency; the defaults would reserve 512 MiB each).
fn manifest(name: &str, image: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\nspec:\n  components:\n    - name: hello\n      image: {image}\n      limits: {{memory: 16Mi, maxConcurrency: 4}}\n  hostInterfaces:\n    - namespace: wasi\n      package: http\n      interfaces: [incoming-handler]\n      config:\n        host: {name}.localhost\n"
    )
}

/// Applies one Workload and returns the time until its host answers 200.
fn apply_to_first_response(cluster: &Cluster, name: &str, image: &str) -> Duration {
    let start = Instant::now();
    let out = cluster.control_plane.apply(&manifest(name, image));
    assert!(out.status.success(), "{out:?}");
    loop {
        let host = cluster.workload_host(name);
        if let Some(agent) = cluster.agents.get(&host)
            && let Ok((200, _)) = http_get(&agent.http(), &format!("{name}.localhost"), "/")
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} never answered"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A 3-replica WorkloadDeployment of `image`.
fn deployment_manifest(image: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: WorkloadDeployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  strategy: {{rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}\n  template:\n    spec:\n      components:\n        - name: hello\n          image: {image}\n          limits: {{memory: 16Mi, maxConcurrency: 4}}\n      hostInterfaces:\n        - namespace: wasi\n          package: http\n          interfaces: [incoming-handler]\n          config:\n            host: web.localhost\n"
    )
}

/// Every replica of the current template Ready, none left over.
fn rolled_out(cluster: &Cluster) -> bool {
    let status = cluster.control_plane.jsonpath(
        &["wd", "web"],
        "{.status.updatedReplicas}/{.status.readyReplicas}/{.status.replicas}/{.status.conditions[?(@.type==\"Progressing\")].reason}",
    );
    status == "3/3/3/NewReplicaSetAvailable"
}

/// apply → 3 replicas answering on every host; then a rolling update to another image.
fn deployment(cluster: &Cluster, image: &str) {
    let start = Instant::now();
    let out = cluster.control_plane.apply(&deployment_manifest(image));
    assert!(out.status.success(), "{out:?}");
    cluster.wait("3 replicas", Duration::from_secs(120), |c| {
        rolled_out(c)
            && c.agents
                .values()
                .all(|a| matches!(http_get(&a.http(), "web.localhost", "/"), Ok((200, _))))
    });
    println!(
        "WorkloadDeployment of 3 replicas: apply -> all Ready and answering on both hosts: {:?}",
        start.elapsed()
    );
    let v2 = cluster.push_example("hello-http-v2", "bench");
    let start = Instant::now();
    let out = cluster.control_plane.apply(&deployment_manifest(&v2));
    assert!(out.status.success(), "{out:?}");
    cluster.wait("the rolling update", Duration::from_secs(120), |c| {
        c.control_plane
            .jsonpath(&["wd", "web"], "{.status.observedGeneration}")
            == "2"
            && rolled_out(c)
    });
    println!(
        "rolling update of 3 replicas (maxSurge 1, maxUnavailable 0): {:?}",
        start.elapsed()
    );
    cluster.kubectl_ok(&["delete", "wd", "web"]);
}

fn main() {
    assert!(
        workspace_root()
            .join("examples/build/hello-http.wasm")
            .exists()
    );
    let groups = std::env::var("BENCH_CLUSTER_GROUPS").unwrap_or_else(|_| "basic,scale".into());
    if groups.contains("basic") {
        basic(200);
    }
    if groups.contains("scale") {
        let count = std::env::var("SCALE")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(2000);
        scale::run(count);
    }
}

/// First responses, a small WorkloadDeployment, `count` Workloads on two agents and their idle
/// cost.
fn basic(count: usize) {
    let cluster = Cluster::start(2);
    let image = cluster.push_example("hello-http", "bench");

    // The first Workload on each host pulls and compiles; later ones find the image cached.
    let mut uncached = Vec::new();
    let mut cached = Vec::new();
    for i in 0..6 {
        let name = format!("first-{i}");
        let took = apply_to_first_response(&cluster, &name, &image);
        let host = cluster.workload_host(&name);
        if uncached
            .iter()
            .any(|(h, _): &(String, Duration)| *h == host)
        {
            cached.push(took);
        } else {
            uncached.push((host, took));
        }
    }
    for (host, took) in &uncached {
        println!("apply -> first 200, image not yet on {host}: {took:?}");
    }
    cached.sort();
    println!(
        "apply -> first 200, image cached on the host: median {:?} (min {:?}, max {:?}, n={})",
        cached[cached.len() / 2],
        cached[0],
        cached[cached.len() - 1],
        cached.len()
    );

    deployment(&cluster, &image);

    let start = Instant::now();
    let mut all = String::new();
    for i in 0..count {
        all.push_str(&manifest(&format!("bulk-{i}"), &image));
        all.push_str("---\n");
    }
    let out = cluster.control_plane.apply(&all);
    assert!(out.status.success(), "{out:?}");
    let applied = start.elapsed();
    cluster.wait(
        &format!("{count} Workloads Ready"),
        Duration::from_secs(600),
        |c| {
            let ready = c.control_plane.jsonpath(
                &["workloads"],
                "{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
            );
            ready.lines().filter(|l| *l == "True").count() >= count + 6
        },
    );
    let per_host = cluster.kubectl_ok(&["get", "hosts"]);
    println!(
        "{count} Workloads: applied in {applied:?}, all Ready after {:?}\n{per_host}",
        start.elapsed()
    );
    idle(&cluster);
}

/// What settled Workloads cost the operator while nothing changes: the Workload
/// reconciliations in a window spanning several Lease renewals and requeues.
fn idle(cluster: &Cluster) {
    let reconciles = || {
        operator_counter(
            cluster,
            r#"weft_operator_reconciles_total{controller="workload"}"#,
        )
    };
    let failed = || {
        operator_counter(
            cluster,
            r#"weft_operator_reconcile_errors_total{controller="workload"}"#,
        )
    };
    let failed_before = failed();
    let workloads = cluster
        .kubectl_ok(&["get", "workloads", "-o", "name"])
        .lines()
        .count();
    let window = Duration::from_secs(30);
    let before = reconciles();
    let requests_before = api_requests(cluster);
    // A measurement window, not a wait for a condition.
    std::thread::sleep(window);
    let idle = reconciles() - before;
    println!("idle: of those, failed: {}", failed() - failed_before);
    for ((resource, verb), n) in api_requests(cluster) {
        let delta = n - requests_before
            .get(&(resource.clone(), verb.clone()))
            .unwrap_or(&0.0);
        if delta > 0.0 {
            println!("idle: API server requests in {window:?}: {verb} {resource}: {delta}");
        }
    }
    println!(
        "idle: {idle} Workload reconciliations in {window:?} with {workloads} Workloads \
         ({:.2} per Workload per minute; each host renews its Lease every {:?})",
        idle / workloads as f64 * 60.0 / window.as_secs_f64(),
        cluster.lease_duration / 3
    );
}

/// A counter of the operator's metrics.
fn operator_counter(cluster: &Cluster, series: &str) -> f64 {
    let (_, text) = http_get(&cluster.operator_metrics, "localhost", "/metrics")
        .expect("the operator's metrics");
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The API server's request counts by (resource, verb), from its own metrics.
fn api_requests(cluster: &Cluster) -> std::collections::BTreeMap<(String, String), f64> {
    let text = cluster.kubectl_ok(&["get", "--raw", "/metrics"]);
    let mut counts = std::collections::BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let label = |name: &str| {
            let start = line.find(&format!("{name}=\""))? + name.len() + 2;
            let end = line[start..].find('"')?;
            Some(line[start..start + end].to_string())
        };
        let (Some(resource), Some(verb), Some(n)) = (
            label("resource"),
            label("verb"),
            line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()),
        ) else {
            continue;
        };
        *counts.entry((resource, verb)).or_insert(0.0) += n;
    }
    counts
}
