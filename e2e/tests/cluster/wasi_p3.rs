//! A WASI 0.3 component on the control plane: the Hosts say they serve `wasi:http/handler@0.3`,
//! the Workload is placed, reports its 0.3 export, and one shared instance answers concurrent
//! requests through its host-agent.

use std::time::Duration;

use weft_e2e::Cluster;
use weft_e2e::cluster::http_get;
use weft_e2e::process::{metric, workspace_root};

pub(crate) fn a_wasi_0_3_component_serves_concurrently(cluster: &Cluster) {
    let served = cluster
        .control_plane
        .jsonpath(&["host", "host-a"], "{.status.interfaces[*].interface}");
    assert!(served.contains("wasi:http/handler@0.3.0"), "{served}");

    let image = cluster.push_example("sleep-p3", "1.0");
    let manifest = std::fs::read_to_string(workspace_root().join("examples/sleep-p3.yaml"))
        .unwrap()
        .replace("build/sleep-p3.wasm", &image);
    let out = cluster.control_plane.apply(&manifest);
    assert!(out.status.success(), "{out:?}");
    cluster.wait("sleep-p3 to be Ready", Duration::from_secs(60), |c| {
        c.condition("sleep-p3", "Ready") == "True"
    });
    let exports = cluster
        .control_plane
        .jsonpath(&["wl", "sleep-p3"], "{.status.components[0].exports}");
    assert!(exports.contains("wasi:http/handler@0.3.2"), "{exports}");

    let agent = &cluster.agents[&cluster.workload_host("sleep-p3")];
    let answers: Vec<_> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| http_get(&agent.http(), "sleep-p3.localhost", "/?ms=300")))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for answer in answers {
        assert_eq!(answer.unwrap(), (200, "slept 300 ms\n".to_string()));
    }
    let made = metric(
        &agent.admin(),
        r#"weft_instantiation_duration_seconds_count{workload="default/sleep-p3",component="sleep"}"#,
    );
    assert_eq!(made, 1.0, "one instance served all twenty");
    cluster.kubectl_ok(&["delete", "wl", "sleep-p3", "--timeout=30s"]);
}
