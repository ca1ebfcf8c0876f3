//! Weft on a real node (kubelet, containerd, runc; see `weft_e2e::node`): the images built
//! without Docker, installed by `helm install` from the chart, running as real Pods with the
//! chart's hardened securityContext, probes and RBAC. Timings are printed as figures, never
//! asserted.

use std::process::Command;
use std::time::{Duration, Instant};

use weft_e2e::Node;
use weft_e2e::cluster::http_get;
use weft_e2e::process::workspace_root;

/// The only Host, once one is Ready: its name and `address:port`.
fn ready_host(node: &Node, not: &str) -> (String, String) {
    let mut found = None;
    let plane = &node.control_plane;
    weft_e2e::process::wait_until("a Ready Host", Duration::from_secs(120), || {
        let names = plane.jsonpath(
            &["hosts"],
            "{range .items[?(@.status.conditions[0].status==\"True\")]}{.metadata.name} {end}",
        );
        let Some(name) = names.split_whitespace().find(|n| *n != not) else {
            return false;
        };
        let address = plane.jsonpath(&["host", name], "{.spec.address}:{.spec.httpPort}");
        found = Some((name.to_string(), address));
        true
    });
    found.unwrap()
}

fn manifest(example: &str, image: &str) -> String {
    std::fs::read_to_string(workspace_root().join(format!("examples/{example}.yaml")))
        .unwrap()
        .replace(&format!("build/{example}.wasm"), image)
}

fn wait_ready(node: &Node, workload: &str) {
    node.control_plane.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("wl/{workload}"),
        "--timeout=120s",
    ]);
}

#[test]
fn helm_installs_weft_on_a_real_node_and_workloads_run_in_its_pods() {
    let node = Node::start();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&node)));
    if let Err(panic) = result {
        eprintln!("{}", node.logs());
        std::panic::resume_unwind(panic);
    }
}

fn run(node: &Node) {
    let plane = &node.control_plane;
    node.push_images("e2e");

    // --- helm install: the operator Deployment and the host-agent DaemonSet become Ready
    // through their probes, with the chart's securityContext (non-root, read-only root).
    let took = node.helm_install("e2e", &[]);
    eprintln!("figure: helm install -> all Pods Ready: {took:?}");
    let security = plane.jsonpath(
        &["daemonset", "weft-host-agent", "-n", "weft-system"],
        "{.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem} {.spec.template.spec.securityContext.runAsNonRoot}",
    );
    assert_eq!(security, "true true");

    // The host-agent registered its Host from inside its Pod, with the Pod's IP.
    let (host, address) = ready_host(node, "");
    let pod_ip = plane.jsonpath(
        &[
            "pods",
            "-n",
            "weft-system",
            "-l",
            "app.kubernetes.io/component=host-agent",
        ],
        "{.items[0].status.podIP}",
    );
    assert!(
        address.starts_with(&format!("{pod_ip}:")),
        "{address} vs {pod_ip}"
    );

    // --- kubectl apply -> Ready -> HTTP through the Host's address
    let hello = node.registry.push_example("hello-http", "1.0");
    let applied = Instant::now();
    let out = plane.apply(&manifest("hello-http", &hello));
    assert!(out.status.success(), "{out:?}");
    weft_e2e::process::wait_until("hello to answer", Duration::from_secs(120), || {
        http_get(&address, "hello.localhost", "/").is_ok_and(|(code, _)| code == 200)
    });
    eprintln!(
        "figure: kubectl apply -> first 200 on a real Pod: {:?}",
        applied.elapsed()
    );
    wait_ready(node, "hello");
    assert_eq!(
        http_get(&address, "hello.localhost", "/").unwrap(),
        (200, "Hello from Weft!\n".to_string())
    );

    // --- an emptyDir Workload works on the read-only root (its data under the chart's
    // data volume)
    let volume = node.registry.push_example("volume-http", "1.0");
    let out = plane.apply(&manifest("volume-http", &volume));
    assert!(out.status.success(), "{out:?}");
    wait_ready(node, "volume");
    let put = Command::new("curl")
        .args([
            "-sS",
            "-X",
            "PUT",
            "--data-binary",
            "kept",
            "-H",
            "Host: volume.localhost",
        ])
        .arg(format!("http://{address}/note.txt"))
        .output()
        .unwrap();
    assert!(put.status.success(), "{put:?}");
    assert_eq!(
        http_get(&address, "volume.localhost", "/note.txt").unwrap(),
        (200, "kept".to_string())
    );

    // --- kubectl delete pod: the DaemonSet's replacement registers and the Workloads move to it
    let pod = plane.jsonpath(
        &[
            "pods",
            "-n",
            "weft-system",
            "-l",
            "app.kubernetes.io/component=host-agent",
        ],
        "{.items[0].metadata.name}",
    );
    let deleted = Instant::now();
    plane.kubectl_ok(&["delete", "pod", "-n", "weft-system", &pod, "--wait=false"]);
    let (new_host, new_address) = ready_host(node, &host);
    weft_e2e::process::wait_until("hello on the replacement", Duration::from_secs(120), || {
        http_get(&new_address, "hello.localhost", "/").is_ok_and(|(code, _)| code == 200)
    });
    eprintln!(
        "figure: delete host-agent Pod -> hello answers on its replacement: {:?}",
        deleted.elapsed()
    );
    assert_eq!(plane.jsonpath(&["wl", "hello"], "{.status.host}"), new_host);
    // The old Host goes once its Pod and Lease are gone and it runs nothing.
    weft_e2e::process::wait_until(
        "the old Host to be deleted",
        Duration::from_secs(60),
        || {
            !plane
                .kubectl_ok(&["get", "hosts", "-o", "name"])
                .contains(&host)
        },
    );

    // --- helm upgrade to host-agents as a Deployment of two: both register from their Pods,
    // the DaemonSet's Host goes, and Workloads spread over the two
    let out = plane
        .helm()
        .args(["upgrade", "weft"])
        .arg(workspace_root().join("charts/weft"))
        .args([
            "-n",
            "weft-system",
            "--reuse-values",
            "--wait",
            "--timeout=180s",
        ])
        .args([
            "--set",
            "hostAgent.kind=Deployment",
            "--set",
            "hostAgent.replicas=2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm upgrade: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.wait_pods_ready(Duration::from_secs(180));
    weft_e2e::process::wait_until(
        "two Ready Hosts and nothing else",
        Duration::from_secs(120),
        || {
            let hosts = plane.jsonpath(
                &["hosts"],
                "{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status} {end}",
            );
            hosts.split_whitespace().collect::<Vec<_>>() == ["True", "True"]
        },
    );
    wait_ready(node, "hello");
    let out = plane.apply(
        &manifest("hello-http", &hello)
            .replace("name: hello\n", "name: hello-two\n")
            .replace("host: hello.localhost", "host: hello-two.localhost"),
    );
    assert!(out.status.success(), "{out:?}");
    wait_ready(node, "hello-two");
    for (workload, host_header) in [
        ("hello", "hello.localhost"),
        ("hello-two", "hello-two.localhost"),
    ] {
        let on = plane.jsonpath(&["wl", workload], "{.status.host}");
        let address = plane.jsonpath(&["host", &on], "{.spec.address}:{.spec.httpPort}");
        assert_eq!(
            http_get(&address, host_header, "/").unwrap().0,
            200,
            "{workload} on {on}"
        );
    }
    // Least loaded first: three Workloads on two hosts use both.
    let mut used: Vec<String> = ["hello", "hello-two", "volume"]
        .iter()
        .map(|w| plane.jsonpath(&["wl", w], "{.status.host}"))
        .collect();
    used.sort();
    used.dedup();
    assert_eq!(
        used.len(),
        2,
        "the Workloads spread over both host-agents: {used:?}"
    );

    // --- delete the Workloads, then helm uninstall: nothing is left on a finalizer
    plane.kubectl_ok(&["delete", "wl", "--all", "--timeout=60s"]);
    let out = plane
        .helm()
        .args(["uninstall", "weft", "-n", "weft-system", "--wait"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm uninstall: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        plane.kubectl_ok(&["get", "wl", "-A", "-o", "name"]).trim(),
        ""
    );
}
