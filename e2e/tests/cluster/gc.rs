//! Image garbage collection on a host-agent that was down for longer than the GC age: it keeps
//! the image of the `Never` Workload it is about to run again and removes only what no Workload
//! needs.

use std::time::Duration;

use weft_e2e::Cluster;

use crate::hello_manifest;

/// The blobs in `host`'s image store, and whether all are older than `age`.
fn blobs(cluster: &Cluster, host: &str, age: Duration) -> (usize, bool) {
    let dir = cluster.agents[host].image_dir.path().join("blobs/sha256");
    let ages: Vec<Duration> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
                .map(|t| t.elapsed().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    (ages.len(), ages.iter().all(|a| *a > age))
}

fn pinned(v1: &str, name: &str, policy: &str) -> String {
    hello_manifest(v1)
        .replace("name: hello\n", &format!("name: {name}\n"))
        .replace("host: hello.localhost", &format!("host: {name}.localhost"))
        .replace(
            "spec:\n",
            "spec:\n  hostSelector: {matchLabels: {pool: gc}}\n",
        )
        .replace(
            &format!("image: {v1}\n"),
            &format!("image: {v1}\n      imagePullPolicy: {policy}\n"),
        )
}

pub fn an_agent_back_after_the_gc_age_still_runs_its_never_workload(
    cluster: &mut Cluster,
    v1: &str,
    v2: &str,
) {
    const AGE: Duration = Duration::from_secs(2);
    let gc_age = ["--image-gc-age", "2s"];
    cluster.start_agent_with("host-g", None, &gc_age);
    cluster.kubectl_ok(&["label", "host", "host-g", "pool=gc"]);

    // Two images on host-g: one a Workload keeps needing (with Never, once it is there), one
    // whose Workload is deleted.
    let kept = pinned(v1, "gc-kept", "IfNotPresent");
    let gone = pinned(v1, "gc-gone", "IfNotPresent").replace(v1, v2);
    assert!(gone.contains(v2), "{gone}");
    for manifest in [&kept, &gone] {
        let out = cluster.control_plane.apply(manifest);
        assert!(out.status.success(), "{out:?}");
    }
    cluster.wait("both on host-g, Ready", Duration::from_secs(60), |c| {
        ["gc-kept", "gc-gone"]
            .iter()
            .all(|w| c.workload_host(w) == "host-g" && c.condition(w, "Ready") == "True")
    });
    cluster.kubectl_ok(&["delete", "wl", "gc-gone", "--timeout=30s"]);
    let out = cluster.control_plane.apply(&pinned(v1, "gc-kept", "Never"));
    assert!(out.status.success(), "{out:?}");
    cluster.wait("gc-kept Ready with Never", Duration::from_secs(30), |c| {
        c.condition("gc-kept", "Ready") == "True"
            && c.control_plane.jsonpath(
                &["wl", "gc-kept"],
                "{.status.conditions[?(@.type==\"Ready\")].observedGeneration}",
            ) == c
                .control_plane
                .jsonpath(&["wl", "gc-kept"], "{.metadata.generation}")
    });

    // host-g crashes; no other host fits, so gc-kept waits for one.
    cluster.agents["host-g"].process.signal("KILL");
    cluster.wait("gc-kept to wait for a host", Duration::from_secs(60), |c| {
        c.workload_host("gc-kept").is_empty()
    });
    cluster.wait(
        "both blobs unused for longer than the GC age",
        Duration::from_secs(30),
        |c| blobs(c, "host-g", AGE) == (2, true),
    );

    // Back after the GC age: its first sweep runs before the operator gives gc-kept back, yet
    // keeps its image (a Workload waiting for a host may come here) and removes the other.
    cluster.start_agent_with("host-g", None, &gc_age);
    cluster.kubectl_ok(&["label", "host", "host-g", "pool=gc", "--overwrite"]);
    cluster.wait(
        "gc-kept Ready on host-g again, the other blob collected",
        Duration::from_secs(60),
        |c| {
            c.workload_host("gc-kept") == "host-g"
                && c.condition("gc-kept", "Ready") == "True"
                && blobs(c, "host-g", Duration::ZERO).0 == 1
        },
    );
    cluster.kubectl_ok(&["delete", "wl", "gc-kept", "--timeout=30s"]);
}
