//! Weft on a real node (kubelet, containerd, runc; see `weft_e2e::node`): the images built
//! without Docker, installed by `helm install` from the chart, running as real Pods with the
//! chart's hardened securityContext, probes and RBAC. Timings are printed as figures, never
//! asserted.

use std::process::Command;
use std::time::{Duration, Instant};

use weft_e2e::Node;
use weft_e2e::cluster::{RequestLoop, http_get};
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

    // --- the admin port, reached from outside the Pod (as another Pod would): metrics and
    // probes answer, every tenant's Workloads do not.
    let admin = format!("{pod_ip}:9090");
    assert_eq!(http_get(&admin, "admin", "/readyz").unwrap().0, 200);
    assert_eq!(http_get(&admin, "admin", "/metrics").unwrap().0, 200);
    let (code, body) = http_get(&admin, "admin", "/workloads").unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("only on the host itself"), "{body}");

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

    // --- a new image while a request loop runs against the Pod: no request fails
    let requests = {
        let address = address.clone();
        RequestLoop::start("hello.localhost", move || address.clone())
    };
    let v2 = node.registry.push_example("hello-http-v2", "2.0");
    let out = plane.apply(&manifest("hello-http", &v2));
    assert!(out.status.success(), "{out:?}");
    weft_e2e::process::wait_until("v2 to serve", Duration::from_secs(120), || {
        requests.saw_change()
    });
    let (answered, errors) = requests.finish(50);
    assert!(
        errors.is_empty(),
        "requests failed during the update: {errors:?}"
    );
    eprintln!("figure: update on a real Pod served {answered} requests, 0 failed");

    // --- an interface no host serves: Pending, and the reason names it
    let out = plane.apply(
        "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: needs-ledger
spec:
  components:
    - name: ledger
      image: 198.18.0.1:1/none:1
  hostInterfaces:
    - namespace: acme
      package: ledger
      interfaces: [entries]
      version: 1.0.0
",
    );
    assert!(out.status.success(), "{out:?}");
    let scheduled = || {
        plane.jsonpath(
            &["wl", "needs-ledger"],
            "{.status.phase} {.status.conditions[?(@.type==\"Scheduled\")].status}: {.status.conditions[?(@.type==\"Scheduled\")].message}",
        )
    };
    weft_e2e::process::wait_until(
        "needs-ledger to be refused",
        Duration::from_secs(60),
        || scheduled().starts_with("Pending False"),
    );
    assert!(
        scheduled().contains("acme:ledger/entries@1.0.0"),
        "{}",
        scheduled()
    );
    plane.kubectl_ok(&["delete", "wl", "needs-ledger", "--timeout=60s"]);

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

    // --- the operator Deployment's leader Pod deleted: the standby takes the Lease (and it
    // schedules everything below)
    let holder = || {
        plane.jsonpath(
            &["lease", "-n", "weft-system", "weft-operator"],
            "{.spec.holderIdentity}",
        )
    };
    let leader = holder();
    let operators = plane.jsonpath(
        &[
            "pods",
            "-n",
            "weft-system",
            "-l",
            "app.kubernetes.io/component=operator",
        ],
        "{.items[*].metadata.name}",
    );
    assert!(
        operators.split_whitespace().count() == 2 && operators.contains(&leader),
        "leader {leader:?} among {operators:?}"
    );
    let deleted = Instant::now();
    plane.kubectl_ok(&[
        "delete",
        "pod",
        "-n",
        "weft-system",
        &leader,
        "--wait=false",
    ]);
    // The standby or the Deployment's replacement Pod, whichever asks first once the Lease is
    // released.
    weft_e2e::process::wait_until("another replica to lead", Duration::from_secs(60), || {
        let now = holder();
        !now.is_empty() && now != leader
    });
    eprintln!(
        "figure: operator leader Pod deleted -> another replica leads: {:?}",
        deleted.elapsed()
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
    let out = node
        .helm_upgrade(&["hostAgent.kind=Deployment", "hostAgent.replicas=2"])
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
    // hello was Ready on the DaemonSet's Host, which is gone: its status names that Host until
    // it runs on one of the two new ones, so wait for it to answer where its status says.
    for (workload, host_header) in [
        ("hello", "hello.localhost"),
        ("hello-two", "hello-two.localhost"),
    ] {
        weft_e2e::process::wait_until(
            &format!("{workload} to answer on the Host its status names"),
            Duration::from_secs(120),
            || {
                let on = plane.jsonpath(&["wl", workload], "{.status.host}");
                let address = plane.jsonpath(&["host", &on], "{.spec.address}:{.spec.httpPort}");
                http_get(&address, host_header, "/").is_ok_and(|(status, _)| status == 200)
            },
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

    drain_honours_the_disruption_budget(node);
    roll_to_a_new_image(node);
    uninstall_with_workloads(node);
}

/// `kubectl drain` of the host-agents: the budget (maxUnavailable 1) lets one go and refuses
/// the second while the first has no replacement (the node is cordoned); the first one's
/// Workloads move to the second.
fn drain_honours_the_disruption_budget(node: &Node) {
    let plane = &node.control_plane;
    weft_e2e::process::wait_until(
        "the budget to allow one disruption",
        Duration::from_secs(60),
        || {
            plane.jsonpath(
                &["pdb", "weft-host-agent", "-n", "weft-system"],
                "{.status.disruptionsAllowed}",
            ) == "1"
        },
    );
    let node_name = plane.jsonpath(&["nodes"], "{.items[0].metadata.name}");
    let drained = plane.kubectl_output(&[
        "drain",
        &node_name,
        "--pod-selector=app.kubernetes.io/component=host-agent",
        "--delete-emptydir-data",
        "--timeout=20s",
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&drained.stdout),
        String::from_utf8_lossy(&drained.stderr)
    );
    assert!(!drained.status.success(), "the drain evicted both: {said}");
    assert!(said.contains("disruption budget"), "{said}");
    assert_eq!(said.matches("evicted").count(), 1, "{said}");
    // Everything runs on the host-agent that was kept.
    let kept: Vec<String> = plane
        .jsonpath(
            &[
                "pods",
                "-n",
                "weft-system",
                "-l",
                "app.kubernetes.io/component=host-agent",
            ],
            "{range .items[*]}{.metadata.name}/{.status.phase}/{.metadata.deletionTimestamp} {end}",
        )
        .split_whitespace()
        .filter_map(|p| p.strip_suffix("/Running/").map(str::to_owned))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    weft_e2e::process::wait_until(
        "the Workloads to move to the kept host-agent",
        Duration::from_secs(120),
        || {
            ["hello", "hello-two", "volume"].iter().all(|w| {
                let on = plane.jsonpath(
                    &["wl", w],
                    "{.status.host} {.status.conditions[?(@.type==\"Ready\")].status}",
                );
                on == format!("{} True", kept[0])
            })
        },
    );
    plane.kubectl_ok(&["uncordon", &node_name]);
    node.wait_pods_ready(Duration::from_secs(180));
}

/// `helm upgrade` to a new image tag: the host-agents roll one at a time, a new one Ready
/// before an old one goes (maxSurge 1, maxUnavailable 0), and the Workloads end up Ready.
fn roll_to_a_new_image(node: &Node) {
    let plane = &node.control_plane;
    node.push_images("e2e-2");
    let ready_agents = || {
        plane.jsonpath(
            &["pods", "-n", "weft-system", "-l", "app.kubernetes.io/component=host-agent"],
            "{range .items[*]}{.metadata.deletionTimestamp}/{.status.conditions[?(@.type==\"Ready\")].status} {end}",
        )
        .split_whitespace()
        .filter(|p| *p == "/True")
        .count()
    };
    let mut upgrade = node
        .helm_upgrade(&["operator.image.tag=e2e-2", "hostAgent.image.tag=e2e-2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut fewest = usize::MAX;
    while upgrade.try_wait().unwrap().is_none() {
        fewest = fewest.min(ready_agents());
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "helm upgrade hangs"
        );
    }
    let out = upgrade.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "helm upgrade: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.wait_pods_ready(Duration::from_secs(180));
    eprintln!(
        "figure: image roll of two host-agents: {:?}",
        started.elapsed()
    );
    assert!(
        fewest >= 2,
        "only {fewest} host-agents were Ready during the roll"
    );
    // The old ones drain and go.
    weft_e2e::process::wait_until("two host-agents, both new", Duration::from_secs(90), || {
        let images = plane.jsonpath(
            &[
                "pods",
                "-n",
                "weft-system",
                "-l",
                "app.kubernetes.io/component=host-agent",
            ],
            "{.items[*].spec.containers[0].image}",
        );
        let images: Vec<&str> = images.split_whitespace().collect();
        images.len() == 2 && images.iter().all(|i| i.ends_with(":e2e-2"))
    });
    for workload in ["hello", "hello-two", "volume"] {
        wait_ready(node, workload);
    }
}

/// `helm uninstall` while Workloads exist: the pre-delete Job stops the operator and releases
/// the finalizers, so the Workloads are kept and can still be deleted afterwards.
fn uninstall_with_workloads(node: &Node) {
    let plane = &node.control_plane;
    let out = plane
        .helm()
        .args([
            "uninstall",
            "weft",
            "-n",
            "weft-system",
            "--wait",
            "--timeout=180s",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm uninstall: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The host-agents drain (nothing can take their Workloads) and exit.
    weft_e2e::process::wait_until(
        "the release's Pods to be gone",
        Duration::from_secs(90),
        || {
            plane
                .kubectl_ok(&["get", "pods", "-n", "weft-system", "-o", "name"])
                .trim()
                .is_empty()
        },
    );
    let kept = plane.jsonpath(
        &["wl"],
        "{range .items[*]}{.metadata.name}={.metadata.finalizers} {end}",
    );
    assert_eq!(
        kept.trim(),
        "hello= hello-two= volume=",
        "Workloads kept, finalizers released"
    );
    plane.kubectl_ok(&["delete", "wl", "--all", "--timeout=30s"]);
    assert_eq!(
        plane.kubectl_ok(&["get", "wl", "-A", "-o", "name"]).trim(),
        ""
    );
}
