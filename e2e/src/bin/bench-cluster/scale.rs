//! The scale group (`SCALE=N`, default 2,000): N Workloads on four host-agents, from
//! `kubectl apply` to all Ready, against the API server's own pace for N ConfigMaps through the
//! same client; what that costs (API requests per Workload, CPU seconds and peak RSS of the
//! operator and the agents); the operator idle with N Workloads; one agent SIGKILLed and its
//! Workloads Ready elsewhere; a WorkloadDeployment of up to 1,000 replicas rolled to a new
//! image; deleting everything.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weft_e2e::Cluster;

use crate::{api_requests, operator_counter};

const AGENTS: [&str; 4] = ["host-a", "host-b", "host-c", "host-d"];
const LABEL: &str = "weft.dev/bench=scale";

/// A Workload as small as placement allows: 2 MiB × 1 instance reserved, so thousands fit one
/// host's memory budget.
fn workload(name: &str, image: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\n  labels: {{weft.dev/bench: scale}}\nspec:\n  components:\n    - name: hello\n      image: {image}\n      limits: {{memory: 2Mi, maxConcurrency: 1}}\n  hostInterfaces:\n    - namespace: wasi\n      package: http\n      interfaces: [incoming-handler]\n---\n"
    )
}

fn config_map(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{weft.dev/bench: scale}}\ndata:\n  greeting: hello\n---\n"
    )
}

fn deployment(replicas: usize, image: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: WorkloadDeployment\nmetadata:\n  name: many\nspec:\n  replicas: {replicas}\n  template:\n    spec:\n      components:\n        - name: hello\n          image: {image}\n          limits: {{memory: 2Mi, maxConcurrency: 1}}\n      hostInterfaces:\n        - namespace: wasi\n          package: http\n          interfaces: [incoming-handler]\n"
    )
}

/// `kubectl apply --server-side` of `yaml`: one request per object, the fastest a client goes.
fn apply(cluster: &Cluster, yaml: &str) -> Duration {
    apply_with(cluster, yaml, &[])
}

fn apply_with(cluster: &Cluster, yaml: &str, extra: &[&str]) -> Duration {
    let start = Instant::now();
    let args = ["apply", "--server-side", "--field-manager=bench", "-f", "-"];
    let out = cluster
        .control_plane
        .kubectl_stdin(&[&args[..], extra].concat(), yaml);
    assert!(out.status.success(), "{out:?}");
    start.elapsed()
}

/// Room on each agent for every Workload: as many Workloads and instance slots (each takes one).
fn agent_args(capacity: &str) -> [&str; 4] {
    ["--max-workloads", capacity, "--max-instances", capacity]
}

/// Deletes the bench's objects at `path` in one request (`kubectl delete` deletes one at a
/// time, and waits for each). The API server cuts a request off after 60 s, before it has
/// marked 10,000 Workloads deleted: what is left is asked for again.
fn delete_collection(cluster: &Cluster, path: &str) {
    let target = format!("{path}?labelSelector={LABEL}");
    for _ in 0..10 {
        let out = cluster
            .control_plane
            .kubectl_output(&["delete", "--raw", &target]);
        if out.status.success() {
            return;
        }
        let why = String::from_utf8_lossy(&out.stderr);
        eprintln!("deleting {path} was cut off ({}); again", why.trim());
    }
    panic!("deleting {path} was cut off 10 times");
}

/// Each Workload's phase and host, listed in one request.
fn phases(cluster: &Cluster) -> Vec<(String, String)> {
    let out = cluster.kubectl_ok(&[
        "get",
        "workloads",
        "-o",
        r#"jsonpath={range .items[*]}{.status.phase} {.status.host}{"\n"}{end}"#,
    ]);
    out.lines()
        .map(|l| {
            let (phase, host) = l.split_once(' ').unwrap_or((l, ""));
            (phase.to_owned(), host.to_owned())
        })
        .collect()
}

/// Polls (a list of every Workload, then a second's pause, so the poll does not load the API
/// server it measures) until `done`; returns the time since `start`.
fn wait_for(
    cluster: &Cluster,
    what: &str,
    start: Instant,
    timeout: Duration,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Duration {
    loop {
        let phases = phases(cluster);
        if done(&phases) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// CPU seconds and peak RSS (MiB) of a process, from /proc.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the name; 100 ticks/s.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak_kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, peak_kib / 1024.0)
}

/// CPU seconds and peak RSS of the operator and of every agent, by name.
fn usages(cluster: &Cluster) -> BTreeMap<String, (f64, f64)> {
    let mut all = BTreeMap::new();
    if let Some(operator) = &cluster.operator {
        all.insert("operator".to_owned(), usage(operator.child.id()));
    }
    for (name, agent) in &cluster.agents {
        all.insert(name.clone(), usage(agent.process.child.id()));
    }
    all
}

fn report_usage(phase: &str, before: &BTreeMap<String, (f64, f64)>, cluster: &Cluster) {
    for (name, (cpu, peak)) in usages(cluster) {
        let spent = cpu - before.get(&name).map_or(0.0, |b| b.0);
        println!("scale: {phase}: {name}: {spent:.1} CPU s, peak RSS {peak:.0} MiB");
    }
}

/// The API server's requests since `before`, per Workload, the largest first.
fn report_requests(
    phase: &str,
    before: &BTreeMap<(String, String), f64>,
    cluster: &Cluster,
    per: usize,
) {
    let mut deltas: Vec<((String, String), f64)> = api_requests(cluster)
        .into_iter()
        .map(|(key, n)| {
            let delta = n - before.get(&key).unwrap_or(&0.0);
            (key, delta)
        })
        .filter(|(_, delta)| *delta > 0.0)
        .collect();
    deltas.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = deltas.iter().map(|(_, d)| d).sum();
    println!(
        "scale: {phase}: {total} API requests, {:.2} per Workload",
        total / per as f64
    );
    for ((resource, verb), delta) in deltas.iter().take(8) {
        println!(
            "scale: {phase}:   {verb} {resource}: {delta} ({:.2} per Workload)",
            delta / per as f64
        );
    }
}

pub fn run(count: usize) {
    let mut cluster = Cluster::start(0);
    let capacity = (count * 2).to_string();
    for name in AGENTS {
        cluster.start_agent_with(name, None, &agent_args(&capacity));
    }
    let image = cluster.push_example("hello-http", "bench");

    // The API server's own pace: as many ConfigMaps, through the same client and verb.
    let config_maps: String = (0..count).map(|i| config_map(&format!("cm-{i}"))).collect();
    let accepted = apply(&cluster, &config_maps);
    delete_collection(&cluster, "/api/v1/namespaces/default/configmaps");
    println!("scale: {count} ConfigMaps applied (server-side) in {accepted:.1?}");

    let workloads: String = (0..count)
        .map(|i| workload(&format!("w-{i}"), &image))
        .collect();
    // What the CRD's validation costs: the same Workloads, validated and not stored.
    let validated = apply_with(&cluster, &workloads, &["--dry-run=server"]);
    println!("scale: {count} Workloads applied with --dry-run=server in {validated:.1?}");

    let usage_before = usages(&cluster);
    let requests_before = api_requests(&cluster);
    let start = Instant::now();
    let applied = apply(&cluster, &workloads);
    let ready = wait_for(
        &cluster,
        "every Workload Running",
        start,
        Duration::from_secs(1800),
        |p| p.iter().filter(|(phase, _)| phase == "Running").count() == count,
    );
    println!(
        "scale: {count} Workloads Ready in {ready:.1?} (applied in {applied:.1?}); \
         {:.2}x the API server's time to accept {count} ConfigMaps",
        ready.as_secs_f64() / accepted.as_secs_f64()
    );
    report_requests("start", &requests_before, &cluster, count);
    report_usage("start", &usage_before, &cluster);
    println!("{}", cluster.kubectl_ok(&["get", "hosts"]));

    idle(&cluster, count);
    failover(&mut cluster, count, &capacity);
    rollout(&cluster, count, &image);

    let start = Instant::now();
    delete_collection(
        &cluster,
        "/apis/weft.dev/v1alpha1/namespaces/default/workloads",
    );
    wait_for(
        &cluster,
        "every Workload gone",
        start,
        Duration::from_secs(1800),
        |p| p.is_empty(),
    );
    println!(
        "scale: {count} Workloads deleted (finalizers released) in {:.1?}",
        start.elapsed()
    );
}

/// The operator's cost with `count` settled Workloads and nothing changing.
fn idle(cluster: &Cluster, count: usize) {
    let window = Duration::from_secs(30);
    let reconciles = || {
        operator_counter(
            cluster,
            r#"weft_operator_reconciles_total{controller="workload"}"#,
        )
    };
    let (before, usage_before, requests_before) =
        (reconciles(), usages(cluster), api_requests(cluster));
    // A measurement window, not a wait for a condition.
    std::thread::sleep(window);
    let operator_cpu = |u: &BTreeMap<String, (f64, f64)>| u.get("operator").map_or(0.0, |o| o.0);
    let cpu = operator_cpu(&usages(cluster)) - operator_cpu(&usage_before);
    println!(
        "scale: idle: {} Workload reconciliations in {window:?} with {count} Workloads; \
         operator CPU {:.2}%",
        reconciles() - before,
        cpu / window.as_secs_f64() * 100.0
    );
    report_requests("idle", &requests_before, cluster, count);
    report_usage("idle", &usage_before, cluster);
}

/// SIGKILLs the agent with the most Workloads; the time until every Workload is Running on
/// another host. The agent then comes back, empty.
fn failover(cluster: &mut Cluster, count: usize, capacity: &str) {
    let mut per_host: BTreeMap<String, usize> = BTreeMap::new();
    for (_, host) in phases(cluster) {
        *per_host.entry(host).or_default() += 1;
    }
    let (victim, moved) = per_host
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .expect("Workloads are placed");
    let start = Instant::now();
    cluster.agents[&victim].process.signal("KILL");
    let expired = cluster.wait("the Host not Ready", Duration::from_secs(60), |c| {
        !c.host_ready(&victim)
    });
    let took = wait_for(
        cluster,
        "the failover",
        start,
        Duration::from_secs(600),
        |p| {
            p.len() == count
                && p.iter()
                    .all(|(phase, host)| phase == "Running" && *host != victim)
        },
    );
    println!(
        "scale: failover: {moved} Workloads of SIGKILLed {victim} Running elsewhere {took:.1?} \
         after the kill, {:.1?} after the operator marked its Host not Ready ({expired:.1?} after \
         the kill; Lease {:?}, renewed every {:?}, +1 s margin)",
        took - expired,
        cluster.lease_duration,
        cluster.lease_duration / 3
    );
    cluster.start_agent_with(&victim, None, &agent_args(capacity));
}

/// A WorkloadDeployment of up to 1,000 replicas to Ready, then rolled to another image with the
/// default strategy (25% surge, 25% unavailable).
fn rollout(cluster: &Cluster, count: usize, image: &str) {
    let replicas = count.min(1000);
    let status = |c: &Cluster| {
        c.control_plane.jsonpath(
            &["wd", "many"],
            "{.status.observedGeneration}/{.status.updatedReplicas}/{.status.readyReplicas}/{.status.replicas}",
        )
    };
    let settled = |generation: u32| format!("{generation}/{replicas}/{replicas}/{replicas}");
    let start = Instant::now();
    apply(cluster, &deployment(replicas, image));
    cluster.wait("the replicas", Duration::from_secs(1800), |c| {
        std::thread::sleep(Duration::from_millis(500));
        status(c) == settled(1)
    });
    println!(
        "scale: WorkloadDeployment of {replicas} replicas Ready in {:.1?}",
        start.elapsed()
    );
    let v2 = cluster.push_example("hello-http-v2", "bench");
    let start = Instant::now();
    apply(cluster, &deployment(replicas, &v2));
    cluster.wait("the rollout", Duration::from_secs(1800), |c| {
        std::thread::sleep(Duration::from_millis(500));
        status(c) == settled(2)
    });
    println!(
        "scale: {replicas} replicas rolled to a new image in {:.1?}",
        start.elapsed()
    );
    let start = Instant::now();
    cluster.kubectl_ok(&["delete", "wd", "many", "--wait=false"]);
    let gone = wait_for(
        cluster,
        "the replicas gone",
        start,
        Duration::from_secs(1800),
        |p| p.len() == count,
    );
    println!("scale: WorkloadDeployment deleted, its {replicas} replicas gone in {gone:.1?}");
}
