//! Fencing: a host-agent cut off from the API server stops its Workloads before the operator
//! moves them, so a service never runs on two hosts at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use weft_e2e::Cluster;
use weft_e2e::cluster::http_get;
use weft_e2e::partition::Partition;

/// Timestamps (RFC 3339, UTC, fixed width: they sort as text) of the log lines where the
/// service of `workload` ticked.
fn ticks(logs: &str, workload: &str) -> Vec<String> {
    logs.lines()
        .filter(|l| l.contains("weft::guest") && l.contains(workload) && l.contains("tick "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

pub fn a_partitioned_agent_stops_before_its_workloads_move(cluster: &mut Cluster, v1: &str) {
    let ticker = cluster.push_example("service-loop", "1.0");
    let partition = Partition::start(cluster.control_plane.api_socket());
    cluster.start_agent_through("host-e", &partition);
    cluster.kubectl_ok(&["label", "host", "host-e", "fence=test"]);
    let manifest = format!(
        "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: fenced
spec:
  hostSelector: {{matchLabels: {{fence: test}}}}
  components:
    - name: hello
      image: {v1}
  service:
    name: ticker
    image: {ticker}
  hostInterfaces:
    - namespace: wasi
      package: http
      interfaces: [incoming-handler]
      config: {{host: fenced.localhost}}
"
    );
    let out = cluster.control_plane.apply(&manifest);
    assert!(out.status.success(), "{out:?}");
    cluster.wait("fenced Ready on host-e", Duration::from_secs(60), |c| {
        c.workload_host("fenced") == "host-e" && c.condition("fenced", "Ready") == "True"
    });
    cluster.start_agent("host-f");
    cluster.kubectl_ok(&["label", "host", "host-f", "fence=test"]);

    // Both hosts' admin ports (not behind the partition) sampled throughout: never both
    // running it.
    let admins = [
        cluster.agents["host-e"].admin(),
        cluster.agents["host-f"].admin(),
    ];
    let done = Arc::new(AtomicBool::new(false));
    let (both, samples) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let sampler = {
        let (done, both, samples) = (done.clone(), both.clone(), samples.clone());
        std::thread::spawn(move || {
            let runs = |admin: &str| {
                http_get(admin, "admin", "/workloads")
                    .is_ok_and(|(_, body)| body.contains("default/fenced"))
            };
            while !done.load(Ordering::SeqCst) {
                if runs(&admins[0]) && runs(&admins[1]) {
                    both.fetch_add(1, Ordering::SeqCst);
                }
                samples.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    partition.cut();
    let admin_e = cluster.agents["host-e"].admin();
    let stopped = cluster.wait("host-e to fence itself", Duration::from_secs(30), |_| {
        !http_get(&admin_e, "admin", "/workloads")
            .is_ok_and(|(_, body)| body.contains("default/fenced"))
    });
    let moved = cluster.wait("fenced to run on host-f", Duration::from_secs(60), |c| {
        c.workload_host("fenced") == "host-f" && c.condition("fenced", "Ready") == "True"
    });
    eprintln!(
        "figure: partition -> stopped on the cut-off host {stopped:?}, running on another {moved:?}"
    );
    let reason = cluster.control_plane.jsonpath(
        &["host", "host-e"],
        "{.status.conditions[?(@.type==\"Ready\")].reason}",
    );
    assert_eq!(reason, "LeaseExpired");
    // The service's own output: its last tick on host-e came before its first on host-f.
    let logs_e = cluster.agents["host-e"].process.logs();
    assert!(
        logs_e.contains("fenced: the host lease was not renewed"),
        "{logs_e}"
    );
    cluster.wait("ticks on host-f", Duration::from_secs(10), |c| {
        !ticks(&c.agents["host-f"].process.logs(), "default/fenced").is_empty()
    });
    let on_e = ticks(&logs_e, "default/fenced");
    let on_f = ticks(&cluster.agents["host-f"].process.logs(), "default/fenced");
    let (last_e, first_f) = (on_e.last().unwrap(), on_f.first().unwrap());
    assert!(
        last_e < first_f,
        "host-e ticked at {last_e}, after host-f started at {first_f}"
    );
    eprintln!("figure: last tick on the cut-off host {last_e}, first on the new host {first_f}");

    // --- healed: host-e renews its Lease, lifts its fence and is Ready again. Its watch was
    // cut off too and may still say the Workload is its own, but the API server says otherwise,
    // so it does not start it again: still never on both hosts
    partition.heal();
    let back = cluster.wait("host-e Ready again", Duration::from_secs(45), |c| {
        c.host_ready("host-e")
    });
    eprintln!("figure: partition healed -> host Ready again: {back:?}");
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert!(samples.load(Ordering::SeqCst) > 50);
    assert_eq!(
        both.load(Ordering::SeqCst),
        0,
        "both hosts ran the Workload at once"
    );
    assert!(
        cluster.agents["host-e"]
            .process
            .logs()
            .contains("fence lifted")
    );
    assert_eq!(cluster.workload_host("fenced"), "host-f");
    cluster.kubectl_ok(&["delete", "wl", "fenced", "--timeout=30s"]);
}
