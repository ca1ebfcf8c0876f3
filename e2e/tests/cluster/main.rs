//! Weft end to end on a real control plane (etcd + kube-apiserver), a real OCI registry, the
//! operator and two host-agents as processes, with kubectl and plain HTTP as the clients.
//!
//! The chart's Pods on a real node are tested in `tests/node.rs`. This suite keeps what
//! processes make cheap or possible there: SIGKILL and SIGTERM of one host-agent (exit code,
//! lease expiry, a NATS counter that moves with it), restarting the API server under the agents,
//! SIGKILL of the leading operator (takeover by expiry, not release), an operator restart
//! that starts nothing twice (the agents' compile counters), EndpointSlices, and an audit that
//! the chart's RBAC refused nothing.
//!
//! One cluster serves every step, in order, because starting it is the expensive part; each step
//! says what it checks. Timings are printed (`cargo test -- --nocapture`) and bounded by
//! generous timeouts, never asserted as performance.

use std::time::{Duration, Instant};

use weft_e2e::Cluster;
use weft_e2e::cluster::http_get;
use weft_e2e::process::workspace_root;

mod capacity;
mod deployment;
mod events;
mod fencing;
mod gc;
mod sources;
mod tenancy;
mod wasi_p3;

pub(crate) const HELLO: &str = "Hello from Weft!\n";

/// Applies hello-http as another Workload (`name`, answering `<name>.localhost`) and waits
/// until it is Ready.
fn apply_hello_as(cluster: &Cluster, image: &str, name: &str, what: &str) {
    let out = cluster.control_plane.apply(
        &hello_manifest(image)
            .replace("name: hello\n", &format!("name: {name}\n"))
            .replace("host: hello.localhost", &format!("host: {name}.localhost")),
    );
    assert!(out.status.success(), "{out:?}");
    cluster.wait(what, Duration::from_secs(60), |c| ready(c, name));
}

/// examples/hello-http.yaml with its image pointing at the registry.
pub(crate) fn hello_manifest(image: &str) -> String {
    std::fs::read_to_string(workspace_root().join("examples/hello-http.yaml"))
        .unwrap()
        .replace("build/hello-http.wasm", image)
}

/// Waits until the just-applied `workload` is refused scheduling; returns the reason.
fn unschedulable(cluster: &Cluster, workload: &str, applied: std::process::Output) -> String {
    assert!(applied.status.success(), "{applied:?}");
    cluster.wait(
        &format!("{workload} to be refused"),
        Duration::from_secs(30),
        |c| c.condition(workload, "Scheduled") == "False",
    );
    cluster.control_plane.jsonpath(
        &["wl", workload],
        "{.status.conditions[?(@.type==\"Scheduled\")].message}",
    )
}

fn ready(cluster: &Cluster, workload: &str) -> bool {
    cluster.condition(workload, "Ready") == "True"
}

#[test]
fn weft_runs_workloads_on_a_real_control_plane() {
    let mut cluster = Cluster::start(2);
    let hosts = cluster.kubectl_ok(&["get", "hosts"]);
    assert!(
        hosts.contains("host-a") && hosts.contains("host-b") && hosts.contains("True"),
        "{hosts}"
    );
    // Each Host says what memory it promises Workloads.
    let memory = cluster
        .control_plane
        .jsonpath(&["host", "host-a"], "{.status.capacity.memory}");
    assert!(memory.ends_with("Ki") && memory.len() > 2, "{memory}");
    // ...and the backends each interface may use.
    let keyvalue = cluster.control_plane.jsonpath(
        &["host", "host-a"],
        "{.status.interfaces[?(@.interface==\"wasi:keyvalue/atomics,batch,store@0.2.0-draft\")].backends}",
    );
    assert!(
        keyvalue.contains("memory") && keyvalue.contains("filesystem") && keyvalue.contains("nats"),
        "{keyvalue}"
    );

    // --- apply → Ready → kubectl get → curl
    let v1 = cluster.push_example("hello-http", "1.0");
    let v2 = cluster.push_example("hello-http-v2", "2.0");
    let applied = Instant::now();
    let out = cluster.control_plane.apply(&hello_manifest(&v1));
    assert!(out.status.success(), "{out:?}");
    let answered = loop {
        let host = cluster.workload_host("hello");
        if let Some(agent) = cluster.agents.get(&host)
            && let Ok((200, body)) = http_get(&agent.http(), "hello.localhost", "/")
        {
            assert_eq!(body, HELLO);
            break applied.elapsed();
        }
        assert!(
            applied.elapsed() < Duration::from_secs(60),
            "hello never answered\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("figure: kubectl apply -> first 200: {answered:?}");
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "wl/hello", "--timeout=30s"]);
    let listed = cluster.kubectl_ok(&["get", "wl", "hello"]);
    let host = cluster.workload_host("hello");
    assert!(
        listed.contains(&host) && listed.contains("Running"),
        "{listed}"
    );
    let digest = cluster
        .control_plane
        .jsonpath(&["wl", "hello"], "{.status.components[0].digest}");
    assert!(digest.starts_with("sha256:"), "{digest}");
    let exports = cluster
        .control_plane
        .jsonpath(&["wl", "hello"], "{.status.components[0].exports}");
    assert!(exports.contains("wasi:http/incoming-handler"), "{exports}");

    tenancy::host_names_are_admitted_cluster_wide(&cluster, &v1, &host);
    wasi_p3::a_wasi_0_3_component_serves_concurrently(&cluster);

    // --- a workload asking for a backend no host offers stays Pending, saying which (the
    // hosts offer redis for wasi:keyvalue, not for wasi:blobstore)
    let out = cluster.control_plane.apply(
        "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: needs-redis
spec:
  components:
    - name: blobs
      image: 127.0.0.1:1/none:1
  hostInterfaces:
    - namespace: wasi
      package: blobstore
      interfaces: [blobstore, container, types]
      version: 0.2.0-draft
      config:
        backend: redis
",
    );
    let message = unschedulable(&cluster, "needs-redis", out);
    assert!(
        message.contains("does not offer backend redis for wasi:blobstore"),
        "{message}"
    );
    cluster.kubectl_ok(&["delete", "wl", "needs-redis", "--timeout=30s"]);

    events::the_hosts_events_show_in_describe(&cluster, &v1);
    sources::values_come_from_config_maps_and_secrets(&cluster);

    // --- a hostPath onto the host-agent's ServiceAccount token is refused on the host, and
    // the Workload's status says why
    let out = cluster.control_plane.apply(&format!(
        "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: steal-token
spec:
  components:
    - name: thief
      image: {v1}
      volumeMounts:
        - name: token
          mountPath: /token
  volumes:
    - name: token
      hostPath:
        path: /var/run/secrets/kubernetes.io/serviceaccount
"
    ));
    assert!(out.status.success(), "{out:?}");
    let message = || {
        cluster.control_plane.jsonpath(
            &["wl", "steal-token"],
            "{.status.conditions[?(@.type==\"Ready\")].message}",
        )
    };
    cluster.wait(
        "the hostPath to be refused",
        Duration::from_secs(30),
        |_| message().contains("overlaps the host's own directory /var/run/secrets"),
    );
    assert!(message().contains("volume token"), "{}", message());
    cluster.kubectl_ok(&["delete", "wl", "steal-token", "--timeout=30s"]);

    // --- a Service's EndpointSlice lists exactly the host running the workload Ready
    cluster.kubectl_ok(&[
        "create",
        "service",
        "clusterip",
        "hello",
        "--clusterip=None",
        "--tcp=80:8080",
    ]);
    let with_service = hello_manifest(&v2).replace(
        "spec:\n",
        "spec:\n  kubernetes:\n    service:\n      name: hello\n",
    );
    let out = cluster.control_plane.apply(&with_service);
    assert!(out.status.success(), "{out:?}");
    let endpoints = |c: &Cluster| {
        c.control_plane.jsonpath(
            &["endpointslices", "-l", "kubernetes.io/service-name=hello"],
            "{.items[*].endpoints[*].addresses[*]}",
        )
    };
    let expected = cluster.agents[&cluster.workload_host("hello")]
        .address
        .clone();
    cluster.wait("the EndpointSlice", Duration::from_secs(30), |c| {
        endpoints(c) == expected
    });
    // The Service's DNS name reaches the workload too (once the new version, which claims it,
    // serves).
    let addr = cluster.agents[&cluster.workload_host("hello")].http();
    cluster.wait(
        "hello.default.svc to answer",
        Duration::from_secs(60),
        |_| {
            http_get(&addr, "hello.default.svc.cluster.local", "/")
                == Ok((200, "Hello from Weft v2!\n".to_string()))
        },
    );

    // --- SIGKILL the workload's host: it runs Ready elsewhere
    let victim = cluster.workload_host("hello");
    let killed = Instant::now();
    cluster.agents[&victim].process.signal("KILL");
    let moved = cluster.wait(
        "hello to move after SIGKILL",
        Duration::from_secs(60),
        |c| {
            let host = c.workload_host("hello");
            host != victim && !host.is_empty() && ready(c, "hello")
        },
    );
    eprintln!("figure: SIGKILL failover: {:?}", killed.elapsed());
    let new_host = cluster.workload_host("hello");
    let (code, _) = http_get(&cluster.agents[&new_host].http(), "hello.localhost", "/").unwrap();
    assert_eq!(code, 200);
    cluster.wait(
        "the EndpointSlice to follow",
        Duration::from_secs(30),
        |c| endpoints(c) == c.agents[&new_host].address,
    );
    let _ = moved;
    cluster.start_agent(&victim);

    // --- a counter on NATS keeps counting after its host is SIGKILLed and it moves
    let counter = cluster.push_example("kv-counter-http", "1.0");
    let manifest = std::fs::read_to_string(workspace_root().join("examples/kv-counter.yaml"))
        .unwrap()
        .replace("build/kv-counter-http.wasm", &counter)
        .replace("backend: filesystem", "backend: nats");
    let out = cluster.control_plane.apply(&manifest);
    assert!(out.status.success(), "{out:?}");
    cluster.wait("counter Ready", Duration::from_secs(60), |c| {
        ready(c, "counter")
    });
    let incr = |c: &Cluster| {
        let host = c.workload_host("counter");
        http_get(
            &c.agents[&host].http(),
            "counter.localhost",
            "/incr?key=visits",
        )
    };
    for n in 1..=3 {
        assert_eq!(incr(&cluster), Ok((200, format!("{n}\n"))));
    }
    let victim = cluster.workload_host("counter");
    cluster.agents[&victim].process.signal("KILL");
    cluster.wait(
        "counter to move after SIGKILL",
        Duration::from_secs(60),
        |c| {
            let host = c.workload_host("counter");
            host != victim && !host.is_empty() && ready(c, "counter")
        },
    );
    assert_eq!(
        incr(&cluster),
        Ok((200, "4\n".to_string())),
        "the count moved with it"
    );
    cluster.start_agent(&victim);

    // --- SIGTERM the workload's host: it moves, and the agent exits cleanly
    let victim = cluster.workload_host("hello");
    let termed = Instant::now();
    cluster.agents[&victim].process.signal("TERM");
    cluster.wait(
        "hello to move after SIGTERM",
        Duration::from_secs(30),
        |c| {
            let host = c.workload_host("hello");
            host != victim && !host.is_empty() && ready(c, "hello")
        },
    );
    eprintln!("figure: SIGTERM failover: {:?}", termed.elapsed());
    let agent = cluster.agents.get_mut(&victim).unwrap();
    assert_eq!(agent.process.wait_exit(Duration::from_secs(30)), Some(0));
    cluster.start_agent(&victim);

    // --- restart the operator: nothing restarts, nothing is duplicated
    let host = cluster.workload_host("hello");
    let uid_before = cluster
        .control_plane
        .jsonpath(&["wl", "hello"], "{.metadata.uid}");
    let compiles = |c: &Cluster, name: &str| {
        weft_e2e::process::metric(
            &c.agents[name].admin(),
            "weft_compilations_total{source=\"compiler\"}",
        ) + weft_e2e::process::metric(
            &c.agents[name].admin(),
            "weft_compilations_total{source=\"cache\"}",
        ) + weft_e2e::process::metric(
            &c.agents[name].admin(),
            "weft_compilations_total{source=\"memory\"}",
        )
    };
    let before: Vec<f64> = cluster
        .agents
        .keys()
        .map(|n| compiles(&cluster, n))
        .collect();
    cluster.operator.as_mut().unwrap().signal("TERM");
    cluster
        .operator
        .as_mut()
        .unwrap()
        .wait_exit(Duration::from_secs(30));
    // The new operator exports its traces: each reconcile is a span.
    let jaeger = weft_e2e::JaegerServer::start();
    cluster.operator_env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), jaeger.otlp.clone()),
        ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
    ];
    cluster.start_operator();
    // Give the new operator time to reconcile everything at least once.
    // The new leader has reconciled hello, the only Workload left.
    cluster.wait(
        "the new operator to reconcile hello",
        Duration::from_secs(30),
        |c| {
            weft_e2e::process::metric(
                &c.operator_metrics,
                "weft_operator_reconciles_total{controller=\"workload\"}",
            ) >= 1.0
        },
    );
    assert_eq!(cluster.workload_host("hello"), host);
    assert_eq!(
        cluster
            .control_plane
            .jsonpath(&["wl", "hello"], "{.metadata.uid}"),
        uid_before
    );
    weft_e2e::process::wait_until(
        "the operator's reconcile of hello in jaeger",
        Duration::from_secs(30),
        || {
            jaeger
                .get("/api/traces?service=weft-operator&operation=reconcile%20Workload&limit=50")
                .is_some_and(|found| {
                    found["data"].as_array().into_iter().flatten().any(|trace| {
                        trace["spans"].as_array().into_iter().flatten().any(|s| {
                            s["tags"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .any(|t| t["key"] == "name" && t["value"] == "hello")
                        })
                    })
                })
        },
    );
    let after: Vec<f64> = cluster
        .agents
        .keys()
        .map(|n| compiles(&cluster, n))
        .collect();
    assert_eq!(before, after, "a component was started again");
    let running_on: Vec<String> = cluster
        .agents
        .values()
        .filter(|a| {
            weft_e2e::process::curl_text(&format!("http://{}/workloads", a.admin()))
                .contains("default/hello")
        })
        .map(|a| a.name.clone())
        .collect();
    assert_eq!(
        running_on,
        vec![host.clone()],
        "hello runs on exactly one host"
    );

    deployment::replicas_spread_scale_roll_and_autoscale(&cluster, &v1, &v2);

    // Everything so far ran with the chart's ServiceAccounts: nothing was refused.
    let forbidden = cluster.forbidden();
    assert!(
        forbidden.is_empty(),
        "the API server refused calls: {forbidden:#?}\n{}",
        cluster.logs()
    );

    // --- the API server away for longer than a lease: the agents fence themselves (stop
    // their Workloads), and once it is back nothing moves before they could renew: the
    // Workloads run again where they were and no Host was ever marked not Ready
    let placements = |c: &Cluster| {
        let workloads = c.kubectl_ok(&[
            "get",
            "wl",
            "-A",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name}={.status.host}{"\n"}{end}"#,
        ]);
        let hosts = c.kubectl_ok(&[
            "get",
            "hosts",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name} Ready since {.status.conditions[?(@.type=="Ready")].lastTransitionTime}{"\n"}{end}"#,
        ]);
        format!("{workloads}{hosts}")
    };
    let readiness = |c: &Cluster| {
        c.kubectl_ok(&[
            "get",
            "wl",
            "-A",
            "-o",
            r#"jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}"#,
        ])
    };
    let (before, ready_before) = (placements(&cluster), readiness(&cluster));
    let outage = cluster.lease_duration + Duration::from_secs(3);
    cluster.control_plane.restart_apiserver_after(outage);
    // An operator that could not renew its leader Lease for that long steps down and exits, as
    // a leader must; its Pod's container would be restarted, so this restarts it.
    if !cluster.operator.as_mut().is_some_and(|op| op.is_running()) {
        cluster.start_operator();
    }
    cluster.wait(
        "both host-agents to renew and lift their fence",
        Duration::from_secs(60),
        |c| {
            ["host-a", "host-b"]
                .iter()
                .all(|h| c.agents[*h].process.logs().contains("fence lifted"))
        },
    );
    cluster.wait(
        "hello to answer on its host again",
        Duration::from_secs(60),
        |c| {
            c.agents.get(&c.workload_host("hello")).is_some_and(|a| {
                http_get(&a.http(), "hello.localhost", "/").is_ok_and(|(code, _)| code == 200)
            })
        },
    );
    cluster.wait(
        "every Workload as Ready as before",
        Duration::from_secs(60),
        |c| readiness(c) == ready_before,
    );
    assert_eq!(
        placements(&cluster),
        before,
        "something moved after the outage"
    );
    apply_hello_as(
        &cluster,
        &v1,
        "after-restart",
        "a workload applied after the restart",
    );
    // While a restarted API server loads its RBAC caches it may refuse a call or two (a lease
    // renewal, retried on the next beat); count those, and allow no more from here on.
    let refused_during_restart = cluster.forbidden().len();
    for name in ["host-a", "host-b"] {
        assert!(
            cluster.host_ready(name),
            "{name} not Ready after the restart"
        );
    }

    // --- two operator replicas: one leads; when it dies the standby takes over
    let (mut standby, standby_metrics) = cluster.spawn_operator();
    let holder = |c: &Cluster| {
        c.control_plane.jsonpath(
            &["lease", "-n", "weft-system", "weft-operator"],
            "{.spec.holderIdentity}",
        )
    };
    let leader = holder(&cluster);
    assert!(!leader.is_empty());
    cluster.wait(
        "the second replica to stand by",
        Duration::from_secs(30),
        |_| {
            weft_e2e::process::curl_text(&format!("http://{standby_metrics}/readyz")).trim()
                == "standby"
        },
    );
    cluster.operator.as_mut().unwrap().signal("KILL");
    let taken_over = cluster.wait("the standby to lead", Duration::from_secs(60), |c| {
        let now = holder(c);
        !now.is_empty() && now != leader
    });
    eprintln!("figure: operator leader failover after SIGKILL: {taken_over:?}");
    apply_hello_as(
        &cluster,
        &v1,
        "under-new-leader",
        "a Workload scheduled by the new leader",
    );
    assert!(standby.is_running());
    // The standby is the operator from here on: its log is the one a failure shows.
    cluster.operator = Some(standby);
    cluster.operator_metrics = standby_metrics;

    // --- a host-agent's Pod deleted: its Host is not Ready at once, before its lease lapses
    // (The harness gives every agent a Pod object to bind its token to.)
    cluster.start_agent_in_pod("host-c", Some("host-c"));
    let deleted = Instant::now();
    cluster.kubectl_ok(&[
        "delete",
        "pod",
        "host-c",
        "-n",
        "weft-system",
        "--wait=false",
    ]);
    cluster.wait("host-c to be not Ready", Duration::from_secs(5), |c| {
        !c.host_ready("host-c")
    });
    let reason = cluster.control_plane.jsonpath(
        &["host", "host-c"],
        "{.status.conditions[?(@.type==\"Ready\")].reason}",
    );
    assert_eq!(reason, "PodDeleted");
    eprintln!(
        "figure: Pod deleted -> Host not Ready: {:?}",
        deleted.elapsed()
    );

    // --- since the restart, nothing was refused either
    let forbidden = cluster.forbidden();
    assert_eq!(
        forbidden.len(),
        refused_during_restart,
        "the API server refused calls: {forbidden:#?}\n{}",
        cluster.logs()
    );
    tenancy::host_agents_act_only_as_themselves(&cluster);
    tenancy::only_the_operator_assigns_and_names_are_unique(&cluster);

    // --- delete: stopped on its host, and the object goes
    let host = cluster.workload_host("hello");
    cluster.kubectl_ok(&["delete", "wl", "hello", "--timeout=30s"]);
    let gone = cluster
        .control_plane
        .kubectl_output(&["get", "wl", "hello"]);
    assert!(!gone.status.success());
    let (code, _) = http_get(&cluster.agents[&host].http(), "hello.localhost", "/").unwrap();
    assert_eq!(code, 404, "hello still answers after deletion");
    // Its name is free: team-b's Workload, refused until now, is placed and serves it.
    cluster.wait(
        "team-b's hello to take the name",
        Duration::from_secs(60),
        |c| {
            c.control_plane.jsonpath(
                &["wl", "hello", "-n", "team-b"],
                "{.status.conditions[?(@.type==\"Ready\")].status}",
            ) == "True"
        },
    );

    capacity::holds(&mut cluster, &v1);
    tenancy::a_cached_private_image_needs_accepted_credentials(&mut cluster);
    gc::an_agent_back_after_the_gc_age_still_runs_its_never_workload(&mut cluster, &v1, &v2);
    fencing::a_partitioned_agent_stops_before_its_workloads_move(&mut cluster, &v1);
}
