//! WorkloadDeployment on the real control plane: replicas spread over both hosts and listed in
//! the Service's EndpointSlice, `kubectl scale` up and down through the `/scale` subresource, a
//! rolling update under a request loop, a bad template stopped by its progress deadline while
//! the old replicas serve, a HorizontalPodAutoscaler (the real controller-manager's) scaling it,
//! host names held through a rollout and not taken by a template edit, and the garbage
//! collector deleting the replicas with it.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use weft_e2e::Cluster;
use weft_e2e::cluster::{RequestLoop, http_get};

use crate::HELLO;

const V2: &str = "Hello from Weft v2!\n";

fn manifest(image: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1
kind: WorkloadDeployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 3
  strategy:
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}
{extra_spec}  template:
    metadata:
      labels: {{app: web}}
    spec:
      components:
        - name: hello
          image: {image}
      hostInterfaces:
        - namespace: wasi
          package: http
          interfaces: [incoming-handler]
          version: 0.2.0
          config:
            host: web.localhost
      kubernetes:
        service:
          name: web
"
    )
}

fn field(cluster: &Cluster, path: &str) -> String {
    cluster
        .control_plane
        .jsonpath(&["wd", "web"], &format!("{{{path}}}"))
}

/// The replicas not being deleted: `(name, host, ready)`.
fn replicas(cluster: &Cluster) -> Vec<(String, String, bool)> {
    let json = cluster.kubectl_ok(&["get", "wl", "-l", "weft.dev/deployment=web", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["metadata"]["deletionTimestamp"].is_null())
        .map(|w| {
            let ready = w["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            (
                w["metadata"]["name"].as_str().unwrap().to_owned(),
                w["status"]["host"].as_str().unwrap_or_default().to_owned(),
                ready,
            )
        })
        .collect()
}

/// Every replica of the current template Ready, `n` of them, none left over.
fn rolled_out(cluster: &Cluster, n: usize) -> bool {
    let n = n.to_string();
    field(cluster, ".status.observedGeneration") == field(cluster, ".metadata.generation")
        && field(cluster, ".status.replicas") == n
        && field(cluster, ".status.updatedReplicas") == n
        && field(cluster, ".status.readyReplicas") == n
        && field(
            cluster,
            ".status.conditions[?(@.type==\"Progressing\")].reason",
        ) == "NewReplicaSetAvailable"
}

/// The `Scheduled` condition of Workload `name`: `<status> <reason>: <message>`.
fn scheduled(cluster: &Cluster, name: &str) -> String {
    let at = |field: &str| format!("{{.status.conditions[?(@.type==\"Scheduled\")].{field}}}");
    cluster.control_plane.jsonpath(
        &["wl", name],
        &format!("{} {}: {}", at("status"), at("reason"), at("message")),
    )
}

/// hello-http as Workload `name` claiming `host`.
fn hello_claiming(image: &str, name: &str, host: &str) -> String {
    crate::hello_manifest(image)
        .replace("name: hello\n", &format!("name: {name}\n"))
        .replace("host: hello.localhost", &format!("host: {host}"))
}

fn slice_addresses(cluster: &Cluster) -> BTreeSet<String> {
    cluster
        .control_plane
        .jsonpath(
            &["endpointslices", "-l", "kubernetes.io/service-name=web"],
            "{.items[*].endpoints[*].addresses[*]}",
        )
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

pub(crate) fn replicas_spread_scale_roll_and_autoscale(cluster: &Cluster, v1: &str, v2: &str) {
    cluster.kubectl_ok(&[
        "create",
        "service",
        "clusterip",
        "web",
        "--clusterip=None",
        "--tcp=80:8080",
    ]);
    let applied = Instant::now();
    let out = cluster.control_plane.apply(&manifest(v1, ""));
    assert!(out.status.success(), "{out:?}");
    cluster.wait("3 replicas Ready", Duration::from_secs(90), |c| {
        rolled_out(c, 3)
    });
    eprintln!(
        "figure: kubectl apply of 3 replicas -> all Ready: {:?}",
        applied.elapsed()
    );

    // Spread: both hosts run a replica, and the Service lists both.
    let hosts: BTreeSet<String> = replicas(cluster).into_iter().map(|r| r.1).collect();
    let all: BTreeSet<String> = cluster.agents.keys().cloned().collect();
    assert_eq!(hosts, all, "replicas spread over every host");
    let addresses: BTreeSet<String> = cluster.agents.values().map(|a| a.address.clone()).collect();
    cluster.wait(
        "the EndpointSlice to list both hosts",
        Duration::from_secs(30),
        |c| slice_addresses(c) == addresses,
    );
    for agent in cluster.agents.values() {
        assert_eq!(
            http_get(&agent.http(), "web.localhost", "/"),
            Ok((200, HELLO.to_owned())),
            "{}",
            agent.name
        );
    }
    let listed = cluster.kubectl_ok(&["get", "wd", "web"]);
    assert!(
        listed.contains("DESIRED") && listed.contains("UP-TO-DATE") && listed.contains("AVAILABLE"),
        "{listed}"
    );
    let names: Vec<String> = replicas(cluster).into_iter().map(|r| r.0).collect();
    let hash = field(cluster, ".status.templateHash");
    assert!(
        names.iter().all(|n| n.starts_with(&format!("web-{hash}-"))),
        "{names:?} are named after the template hash {hash}"
    );

    // --- a replica deleted by hand is replaced: its deletion reaches the WorkloadDeployment
    // controller through the operator's one Workload watch
    let gone = names[0].clone();
    cluster.kubectl_ok(&["delete", "wl", &gone, "--timeout=30s"]);
    cluster.wait(
        "a new replica in place of the deleted one",
        Duration::from_secs(60),
        |c| {
            let now = replicas(c);
            now.len() == 3 && now.iter().all(|r| r.0 != gone && r.2)
        },
    );

    // --- kubectl scale through the /scale subresource, up and down
    cluster.kubectl_ok(&["scale", "wd/web", "--replicas=5"]);
    cluster.wait("5 replicas", Duration::from_secs(60), |c| rolled_out(c, 5));
    let scale = cluster.kubectl_ok(&[
        "get",
        "wd",
        "web",
        "--subresource=scale",
        "-o",
        "jsonpath={.spec.replicas} {.status.replicas} {.status.selector}",
    ]);
    assert_eq!(scale, "5 5 weft.dev/deployment=web");
    cluster.kubectl_ok(&["scale", "wd/web", "--replicas=1"]);
    cluster.wait("1 replica", Duration::from_secs(60), |c| {
        rolled_out(c, 1) && replicas(c).len() == 1
    });
    cluster.kubectl_ok(&["scale", "wd/web", "--replicas=3"]);
    cluster.wait("3 replicas again", Duration::from_secs(60), |c| {
        rolled_out(c, 3)
    });
    cluster.wait(
        "the EndpointSlice to list both hosts again",
        Duration::from_secs(30),
        |c| slice_addresses(c) == addresses,
    );

    // --- a rival claiming the WorkloadDeployment's name later is refused, during and after
    // the rollout: its replicas hold the name by the WorkloadDeployment's claim, not their own
    let out = cluster
        .control_plane
        .apply(&hello_claiming(v1, "rival", "web.localhost"));
    assert!(out.status.success(), "{out:?}");
    let refused =
        "False HostnameConflict: host web.localhost is claimed by WorkloadDeployment default/web";
    cluster.wait("the rival to be refused", Duration::from_secs(30), |c| {
        scheduled(c, "rival").starts_with(refused)
    });

    // --- a rolling update under a request loop to both hosts: nothing fails, and never fewer
    // than replicas - maxUnavailable = 2 Ready
    let targets: Vec<String> = cluster.agents.values().map(|a| a.http()).collect();
    let turn = std::sync::atomic::AtomicUsize::new(0);
    let requests = RequestLoop::start("web.localhost", move || {
        let i = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        targets[i % targets.len()].clone()
    });
    let updated = Instant::now();
    let out = cluster.control_plane.apply(&manifest(v2, ""));
    assert!(out.status.success(), "{out:?}");
    let fewest = Cell::new(usize::MAX);
    cluster.wait("the rolling update", Duration::from_secs(120), |c| {
        let ready = replicas(c).iter().filter(|r| r.2).count();
        fewest.set(fewest.get().min(ready));
        rolled_out(c, 3)
    });
    let rolled = updated.elapsed();
    cluster.wait("v2 to answer", Duration::from_secs(10), |_| {
        requests.saw_change()
    });
    let (answered, errors) = requests.finish(50);
    eprintln!(
        "figure: rolling update of 3 replicas: {rolled:?}, {answered} requests answered, fewest Ready {}",
        fewest.get()
    );
    assert!(
        errors.is_empty(),
        "failed requests during the rollout: {errors:?}"
    );
    assert!(
        fewest.get() >= 2,
        "only {} Ready during the rollout",
        fewest.get()
    );
    for agent in cluster.agents.values() {
        assert_eq!(
            http_get(&agent.http(), "web.localhost", "/"),
            Ok((200, V2.to_owned()))
        );
    }
    assert!(
        scheduled(cluster, "rival").starts_with(refused),
        "{}",
        scheduled(cluster, "rival")
    );
    cluster.kubectl_ok(&["delete", "wl", "rival", "--timeout=30s"]);
    let revisions = cluster.kubectl_ok(&[
        "get",
        "controllerrevisions",
        "-l",
        "weft.dev/deployment=web",
        "-o",
        "jsonpath={.items[*].revision}",
    ]);
    let mut revisions: Vec<&str> = revisions.split_whitespace().collect();
    revisions.sort_unstable();
    assert_eq!(revisions, ["1", "2"], "one revision per template");

    // --- a template whose image does not exist: the rollout stops at its deadline, and the
    // old replicas keep serving
    let missing = format!("{}/weft/does-not-exist:1", cluster.registry.addr);
    let out = cluster
        .control_plane
        .apply(&manifest(&missing, "  progressDeadlineSeconds: 5\n"));
    assert!(out.status.success(), "{out:?}");
    let stuck = Instant::now();
    cluster.wait("ProgressDeadlineExceeded", Duration::from_secs(60), |c| {
        field(c, ".status.conditions[?(@.type==\"Progressing\")].reason")
            == "ProgressDeadlineExceeded"
    });
    eprintln!(
        "figure: bad template -> ProgressDeadlineExceeded: {:?}",
        stuck.elapsed()
    );
    assert_eq!(
        field(
            cluster,
            ".status.conditions[?(@.type==\"Progressing\")].status"
        ),
        "False"
    );
    assert_eq!(
        field(
            cluster,
            ".status.conditions[?(@.type==\"Available\")].status"
        ),
        "True"
    );
    let ready = replicas(cluster).iter().filter(|r| r.2).count();
    assert!(ready >= 2, "{ready} replicas serve");
    for address in slice_addresses(cluster) {
        let agent = cluster
            .agents
            .values()
            .find(|a| a.address == address)
            .unwrap();
        assert_eq!(
            http_get(&agent.http(), "web.localhost", "/"),
            Ok((200, V2.to_owned())),
            "the old replicas on {} serve",
            agent.name
        );
    }

    // --- back to the good template (its revision becomes the newest), then an HPA with a
    // minimum above the current replicas: the controller-manager scales the WorkloadDeployment
    // through /scale
    let out = cluster.control_plane.apply(&manifest(v2, ""));
    assert!(out.status.success(), "{out:?}");
    cluster.wait("the rollback", Duration::from_secs(90), |c| {
        rolled_out(c, 3)
    });
    cluster.kubectl_ok(&["scale", "wd/web", "--replicas=1"]);
    cluster.wait("1 replica before the HPA", Duration::from_secs(60), |c| {
        rolled_out(c, 1)
    });
    let out = cluster.control_plane.apply(
        "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: default
spec:
  scaleTargetRef:
    apiVersion: weft.dev/v1alpha1
    kind: WorkloadDeployment
    name: web
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: 50}
",
    );
    assert!(out.status.success(), "{out:?}");
    cluster.wait(
        "the HPA to scale to its minimum",
        Duration::from_secs(60),
        |c| rolled_out(c, 2) && field(c, ".spec.replicas") == "2",
    );
    let current = cluster
        .control_plane
        .jsonpath(&["hpa", "web"], "{.status.currentReplicas}");
    assert!(
        current == "1" || current == "2",
        "HPA read the scale: {current}"
    );
    cluster.kubectl_ok(&["delete", "hpa", "web"]);

    // --- a template edited to name a host another Workload claimed since: the new replicas are
    // refused and the other Workload keeps it (precedence dates from the template's claim, not
    // from the WorkloadDeployment's creation)
    let out = cluster
        .control_plane
        .apply(&hello_claiming(v1, "late", "late.localhost"));
    assert!(out.status.success(), "{out:?}");
    cluster.wait("late to be scheduled", Duration::from_secs(30), |c| {
        scheduled(c, "late").starts_with("True")
    });
    let out = cluster.control_plane.apply(&manifest(v2, "").replace(
        "host: web.localhost",
        "host: \"web.localhost,late.localhost\"",
    ));
    assert!(out.status.success(), "{out:?}");
    cluster.wait(
        "a replica of the edited template to be refused",
        Duration::from_secs(60),
        |c| {
            replicas(c).iter().any(|(name, _, _)| {
                scheduled(c, name).starts_with(
                    "False HostnameConflict: host late.localhost is claimed by Workload default/late",
                )
            })
        },
    );
    assert!(
        scheduled(cluster, "late").starts_with("True"),
        "{}",
        scheduled(cluster, "late")
    );
    let claims = field(cluster, ".status.hostnames[*].name");
    assert!(
        claims.starts_with("web.localhost late.localhost "),
        "{claims}"
    );
    cluster.kubectl_ok(&["delete", "wl", "late", "--timeout=30s"]);

    // --- deleting the WorkloadDeployment deletes its replicas (garbage collector)
    cluster.kubectl_ok(&["delete", "wd", "web", "--timeout=60s"]);
    cluster.wait("the replicas to go", Duration::from_secs(60), |c| {
        c.kubectl_ok(&["get", "wl", "-l", "weft.dev/deployment=web", "-o", "name"])
            .trim()
            .is_empty()
    });
    cluster.kubectl_ok(&["delete", "service", "web"]);
}
