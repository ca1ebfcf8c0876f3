//! Values from ConfigMaps and Secrets on the real control plane, with the chart's RBAC: a
//! greeting from a Secret and a variable from a Secret key reach the component, a rotated
//! Secret reaches it while requests run (none fails), no value shows in status, events,
//! `/workloads` or the agents' logs, and a missing Secret or a namespace that did not opt in
//! fails the Workload naming why.

use std::time::Duration;

use weft_e2e::Cluster;
use weft_e2e::cluster::{RequestLoop, http_get};

/// config-http in `namespace`, its wasi:config values from ConfigMap `settings` and Secret
/// `greeting` (the later wins), `PASSWORD` from key `password` of Secret `db`.
fn manifest(image: &str, name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: {name}
  namespace: {namespace}
spec:
  components:
    - name: config
      image: {image}
      env:
        - name: PASSWORD
          valueFrom: {{secretKeyRef: {{name: db, key: password}}}}
  hostInterfaces:
    - namespace: wasi
      package: http
      interfaces: [incoming-handler]
      config: {{host: {name}.localhost}}
    - namespace: wasi
      package: config
      interfaces: [store]
      version: 0.2.0-draft
      configFrom:
        - configMapRef: {{name: settings}}
        - secretRef: {{name: greeting}}
"
    )
}

fn secret(cluster: &Cluster, name: &str, literal: &str) {
    let yaml = cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        name,
        &format!("--from-literal={literal}"),
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    let out = cluster.control_plane.apply(&yaml);
    assert!(out.status.success(), "{out:?}");
}

fn agent_of(cluster: &Cluster, workload: &str) -> String {
    let host = cluster.workload_host(workload);
    cluster.agents[&host].http()
}

pub fn values_come_from_config_maps_and_secrets(cluster: &Cluster) {
    let image = cluster.push_example("config-http", "1.0");
    cluster.kubectl_ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=greeting=Hello from a ConfigMap",
        "--from-literal=mood=calm",
    ]);
    secret(cluster, "greeting", "greeting=Hello from a Secret, v1");
    secret(cluster, "db", "password=s3cret-first");
    let out = cluster
        .control_plane
        .apply(&manifest(&image, "conf", "default"));
    assert!(out.status.success(), "{out:?}");
    cluster.wait("conf to answer", Duration::from_secs(60), |c| {
        c.condition("conf", "Ready") == "True"
            && http_get(&agent_of(c, "conf"), "conf.localhost", "/").is_ok()
    });
    let agent = agent_of(cluster, "conf");
    assert_eq!(
        http_get(&agent, "conf.localhost", "/"),
        Ok((200, "Hello from a Secret, v1\n".into()))
    );
    let (_, all) = http_get(&agent, "conf.localhost", "/all").unwrap();
    assert!(all.contains("mood=calm\n"), "{all}");
    let (_, env) = http_get(&agent, "conf.localhost", "/env").unwrap();
    assert!(env.contains("PASSWORD=s3cret-first\n"), "{env}");

    // --- a rotated Secret reaches the running Workload, and no request fails meanwhile
    let requests = RequestLoop::start("conf.localhost", move || agent.clone());
    secret(cluster, "greeting", "greeting=Hello from a Secret, v2");
    secret(cluster, "db", "password=s3cret-second");
    cluster.wait(
        "the rotated Secret to be served",
        Duration::from_secs(90),
        |_| requests.saw_change(),
    );
    let (answered, errors) = requests.finish(20);
    assert!(errors.is_empty(), "failed during the rotation: {errors:?}");
    eprintln!("figure: Secret rotated under {answered} requests, none failed");
    let agent = agent_of(cluster, "conf");
    assert_eq!(
        http_get(&agent, "conf.localhost", "/"),
        Ok((200, "Hello from a Secret, v2\n".into()))
    );
    let (_, env) = http_get(&agent, "conf.localhost", "/env").unwrap();
    assert!(env.contains("PASSWORD=s3cret-second\n"), "{env}");

    // --- the values are nowhere but in the component
    let status = cluster.kubectl_ok(&["get", "wl", "conf", "-o", "yaml"]);
    let events = cluster.kubectl_ok(&["get", "events", "-A", "-o", "yaml"]);
    let admin: String = cluster
        .agents
        .values()
        .filter_map(|a| http_get(&a.admin(), "localhost", "/workloads").ok())
        .map(|(_, body)| body)
        .collect();
    for (what, text) in [
        ("status", &status),
        ("events", &events),
        ("/workloads", &admin),
    ] {
        assert!(!text.contains("s3cret"), "a Secret value in {what}: {text}");
    }
    assert!(admin.contains("default/conf"), "{admin}");
    assert!(
        !cluster.logs().contains("s3cret"),
        "a Secret value in a log"
    );

    // --- a Secret that does not exist: the Workload fails, naming it
    let out = cluster
        .control_plane
        .apply(&manifest(&image, "nodb", "default").replace("name: db,", "name: absent,"));
    assert!(out.status.success(), "{out:?}");
    cluster.wait("nodb to fail", Duration::from_secs(30), |c| {
        c.control_plane
            .jsonpath(&["wl", "nodb"], "{.status}")
            .contains("Secret absent not found in namespace default")
    });

    // --- a namespace not listed in hostAgent.secrets.namespaces: host-agents may not read
    // its Secrets, and the Workload says so
    cluster.kubectl_ok(&["create", "namespace", "closed"]);
    let out = cluster
        .control_plane
        .apply(&manifest(&image, "closed", "closed").replace("closed.localhost", "web.closed"));
    assert!(out.status.success(), "{out:?}");
    cluster.wait("closed to fail", Duration::from_secs(30), |c| {
        c.control_plane
            .jsonpath(&["wl", "closed", "-n", "closed"], "{.status}")
            .contains("host-agents may not read ConfigMaps in namespace closed")
    });
    for (name, namespace) in [
        ("conf", "default"),
        ("nodb", "default"),
        ("closed", "closed"),
    ] {
        cluster.kubectl_ok(&["delete", "wl", name, "-n", namespace, "--timeout=30s"]);
    }
}
