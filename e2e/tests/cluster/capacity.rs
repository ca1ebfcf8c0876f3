//! A Host's capacity holds: no more Workloads or memory are placed on it than it offers, and
//! those left out say why.

use std::time::Duration;

use weft_e2e::Cluster;

use crate::hello_manifest;

/// Applies `count` hello Workloads `<pool>-<i>` that only hosts labelled `pool=<pool>` may run,
/// and waits until `placed` are scheduled and the rest refused, each saying `why`.
fn fill_pool(cluster: &Cluster, v1: &str, pool: &str, count: usize, placed: usize, why: &str) {
    let manifests: Vec<String> = (0..count)
        .map(|i| {
            hello_manifest(v1)
                .replace("name: hello\n", &format!("name: {pool}-{i}\n"))
                .replace(
                    "host: hello.localhost",
                    &format!("host: {pool}-{i}.localhost"),
                )
                .replace(
                    "spec:\n",
                    &format!("spec:\n  hostSelector: {{matchLabels: {{pool: {pool}}}}}\n"),
                )
        })
        .collect();
    let out = cluster.control_plane.apply(&manifests.join("---\n"));
    assert!(out.status.success(), "{out:?}");
    let scheduled = |c: &Cluster| {
        c.control_plane.jsonpath(
            &["wl"],
            &format!("{{range .items[?(@.spec.hostSelector.matchLabels.pool==\"{pool}\")]}}{{.status.conditions[?(@.type==\"Scheduled\")].status}}/{{.status.conditions[?(@.type==\"Scheduled\")].message}}|{{end}}"),
        )
    };
    let refused = count - placed;
    cluster.wait(
        &format!("{placed} placed, {refused} refused in pool {pool}"),
        Duration::from_secs(60),
        |c| {
            let all = scheduled(c);
            all.matches("True/").count() == placed
                && all.matches("False/").count() == refused
                && all.matches(why).count() == refused
        },
    );
}

pub fn holds(cluster: &mut Cluster, v1: &str) {
    // --- --max-workloads holds: a host offering 3 takes 3 of the 10 Workloads only it may run,
    // and the other 7 wait, saying it is full
    cluster.start_agent_with("host-d", None, &["--max-workloads", "3"]);
    cluster.kubectl_ok(&["label", "host", "host-d", "pool=small"]);
    fill_pool(cluster, v1, "small", 10, 3, "host-d is full (3 workloads)");
    let on_d = cluster.control_plane.jsonpath(
        &["wl", "-l", "weft.dev/host=host-d"],
        "{.items[*].metadata.name}",
    );
    assert_eq!(
        on_d.split_whitespace().count(),
        3,
        "{on_d}\n{}",
        cluster.logs()
    );

    // --- memory is capacity: hello reserves 64Mi × 8 instances, so a host promising 600Mi
    // takes one and refuses the second by the same rule its runtime enforces
    cluster.start_agent_with("host-m", None, &["--memory-budget", "600Mi"]);
    cluster.kubectl_ok(&["label", "host", "host-m", "pool=mem"]);
    fill_pool(
        cluster,
        v1,
        "mem",
        2,
        1,
        "host-m has 88Mi of memory left, the Workload reserves 512Mi",
    );
}
