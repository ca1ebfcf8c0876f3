//! What one tenant cannot do to another or to the placement of Workloads: host names admitted
//! cluster-wide, assignments only the operator makes, one host-agent per name.

use std::time::Duration;

use weft_e2e::Cluster;
use weft_e2e::cluster::http_get;

use crate::{HELLO, hello_manifest};

/// Another namespace cannot take `hello.localhost` from default/hello, running on `host`.
pub fn host_names_are_admitted_cluster_wide(cluster: &Cluster, v1: &str, host: &str) {
    // --- host names are admitted cluster-wide: another namespace allowed the same suffix gets
    // HostnameConflict naming the owner, one without a grant gets HostnameNotAllowed, and hello
    // keeps serving its name
    for namespace in ["team-b", "team-c"] {
        cluster.kubectl_ok(&["create", "namespace", namespace]);
        let out = cluster.control_plane.apply(
            &hello_manifest(v1)
                .replace("namespace: default\n", &format!("namespace: {namespace}\n")),
        );
        assert!(out.status.success(), "{out:?}");
    }
    let refused = |namespace: &str| {
        cluster.control_plane.jsonpath(
            &["wl", "hello", "-n", namespace],
            "{.status.conditions[?(@.type==\"Scheduled\")].reason}: {.status.conditions[?(@.type==\"Scheduled\")].message}",
        )
    };
    cluster.wait(
        "team-b's claim to be refused",
        Duration::from_secs(30),
        |_| refused("team-b").starts_with("HostnameConflict"),
    );
    assert!(
        refused("team-b").contains("host hello.localhost is claimed by Workload default/hello"),
        "{}",
        refused("team-b")
    );
    cluster.wait(
        "team-c's claim to be refused",
        Duration::from_secs(30),
        |_| refused("team-c").starts_with("HostnameNotAllowed"),
    );
    assert!(
        refused("team-c").contains("namespace team-c may not claim host hello.localhost"),
        "{}",
        refused("team-c")
    );
    assert_eq!(
        http_get(&cluster.agents[host].http(), "hello.localhost", "/"),
        Ok((200, HELLO.to_string()))
    );
    cluster.kubectl_ok(&["delete", "wl", "hello", "-n", "team-c", "--timeout=30s"]);
    precedence_follows_the_claim(cluster, v1);
}

/// An older Workload edited to claim a name another holds does not take it: a name belongs to
/// whoever claimed it first, not to the older object.
fn precedence_follows_the_claim(cluster: &Cluster, image: &str) {
    let workload = |namespace: &str, name: &str, hosts: &str| {
        hello_manifest(image)
            .replace("namespace: default\n", &format!("namespace: {namespace}\n"))
            .replace("name: hello\n", &format!("name: {name}\n"))
            .replace("host: hello.localhost", &format!("host: \"{hosts}\""))
    };
    let scheduled = |namespace: &str, name: &str| {
        cluster.control_plane.jsonpath(
            &["wl", name, "-n", namespace],
            "{.status.conditions[?(@.type==\"Scheduled\")].status} {.status.conditions[?(@.type==\"Scheduled\")].reason}: {.status.conditions[?(@.type==\"Scheduled\")].message}",
        )
    };
    for (namespace, name, hosts) in [
        ("team-b", "early", "early.localhost"),
        ("default", "late", "late.localhost"),
    ] {
        let out = cluster
            .control_plane
            .apply(&workload(namespace, name, hosts));
        assert!(out.status.success(), "{out:?}");
        cluster.wait(
            &format!("{name} to be scheduled"),
            Duration::from_secs(30),
            |_| scheduled(namespace, name).starts_with("True"),
        );
    }
    let out = cluster.control_plane.apply(&workload(
        "team-b",
        "early",
        "early.localhost,late.localhost",
    ));
    assert!(out.status.success(), "{out:?}");
    cluster.wait(
        "the edited claim to be refused",
        Duration::from_secs(30),
        |_| scheduled("team-b", "early").starts_with("False HostnameConflict"),
    );
    assert!(
        scheduled("team-b", "early")
            .contains("host late.localhost is claimed by Workload default/late"),
        "{}",
        scheduled("team-b", "early")
    );
    assert!(
        scheduled("default", "late").starts_with("True"),
        "{}",
        scheduled("default", "late")
    );
    for (namespace, name) in [("team-b", "early"), ("default", "late")] {
        cluster.kubectl_ok(&["delete", "wl", name, "-n", namespace, "--timeout=30s"]);
    }
}

/// The weft.dev/host label is the operator's; a host name is one agent's; a deleted Host
/// comes back.
pub fn only_the_operator_assigns_and_names_are_unique(cluster: &Cluster) {
    // --- only the operator assigns: a tenant's weft.dev/host label is refused by the API
    // server (the chart's ValidatingAdmissionPolicy), and with the policy gone the label still
    // runs nothing: the operator replaces it and no host-agent acts on it
    let forged = |name: &str| {
        format!(
            "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: {name}
  labels: {{weft.dev/host: host-a}}
spec:
  components:
    - name: c
      image: 198.18.0.1:1/none:1
  hostSelector: {{matchLabels: {{zone: nowhere}}}}
"
        )
    };
    let out = cluster.control_plane.apply(&forged("forged"));
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("only the Weft operator assigns Workloads to Hosts")
            && said.contains("weft.dev/host"),
        "{said}"
    );
    let elsewhere = match cluster.workload_host("under-new-leader").as_str() {
        "host-a" => "weft.dev/host=host-b",
        _ => "weft.dev/host=host-a",
    };
    let out = cluster.control_plane.kubectl_output(&[
        "label",
        "wl",
        "under-new-leader",
        elsewhere,
        "--overwrite",
    ]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("may not set or change the label"),
        "{out:?}"
    );
    cluster.kubectl_ok(&[
        "delete",
        "validatingadmissionpolicybinding",
        "weft-host-assignment",
    ]);
    // The API server drops the policy from its cache shortly after.
    cluster.wait(
        "the forged label to be admitted without the policy",
        Duration::from_secs(30),
        |c| c.control_plane.apply(&forged("forged")).status.success(),
    );
    cluster.wait(
        "the operator to replace the forged label",
        Duration::from_secs(30),
        |c| c.condition("forged", "Scheduled") == "False" && c.workload_host("forged").is_empty(),
    );
    assert_eq!(
        cluster.condition("forged", "Ready"),
        "",
        "a host-agent acted on a label the operator never recorded"
    );
    assert!(
        !weft_e2e::process::curl_text(&format!(
            "http://{}/workloads",
            cluster.agents["host-a"].admin()
        ))
        .contains("default/forged")
    );
    cluster.kubectl_ok(&["delete", "wl", "forged", "--timeout=30s"]);

    // --- a second host-agent under a name already held refuses to start, saying so
    let scratch = tempfile::tempdir().unwrap();
    let mut duplicate = std::process::Command::new(weft_e2e::process::workspace_bin("host-agent"));
    duplicate
        .args([
            "agent",
            "--host-name",
            "host-a",
            "--namespace",
            "weft-system",
        ])
        .args(["--address", "198.18.255.99", "--listen", "127.0.0.99:0"])
        .args(["--admin-listen", "127.0.0.99:0", "--lease-duration", "6s"])
        .arg("--image-dir")
        .arg(scratch.path())
        .env("KUBECONFIG", &cluster.agents["host-a"].kubeconfig);
    let mut duplicate =
        weft_e2e::process::Process::spawn(duplicate, &scratch.path().join("duplicate.log"));
    let code = duplicate.wait_exit(Duration::from_secs(30));
    assert!(code.is_some_and(|c| c != 0), "{code:?}");
    assert!(
        duplicate
            .logs()
            .contains("another host-agent already runs as host-a"),
        "{}",
        duplicate.logs()
    );
    assert!(cluster.host_ready("host-a"));

    // --- a Host deleted by hand is registered again by its agent
    let uid = |c: &Cluster| {
        c.control_plane
            .jsonpath(&["host", "host-b"], "{.metadata.uid}")
    };
    let before = uid(cluster);
    cluster.kubectl_ok(&["delete", "host", "host-b"]);
    cluster.wait(
        "host-b to be registered again",
        Duration::from_secs(60),
        |c| {
            let now = uid(c);
            !now.is_empty() && now != before && c.host_ready("host-b")
        },
    );
}

/// Runs kubectl with `kubeconfig` and expects the API server to refuse; returns what it said.
fn refused_for(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new(weft_e2e::registry::tool("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    assert!(!output.status.success(), "allowed: kubectl {args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn host_agents_act_only_as_themselves(cluster: &Cluster) {
    // --- a host-agent's own token (bound to its Pod) writes only its own Host, its own Lease and
    // the status of Workloads assigned to it; RBAC keeps it from specs and other namespaces'
    // Secrets
    let placed = cluster.kubectl_ok(&[
        "get",
        "wl",
        "-A",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name} {.status.host}{"\n"}{end}"#,
    ]);
    let (namespace, workload, owner) = placed
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            Some((f.next()?, f.next()?, f.next()?))
        })
        .find(|(_, _, host)| cluster.agents.contains_key(*host) && cluster.host_ready(host))
        .expect("a placed Workload");
    let other = cluster
        .agents
        .keys()
        .find(|name| name.as_str() != owner && cluster.host_ready(name))
        .expect("a second host-agent");
    let as_other = &cluster.agents[other].kubeconfig;

    let said = refused_for(
        as_other,
        &[
            "patch",
            "host",
            owner,
            "--type=merge",
            "-p",
            r#"{"spec":{"address":"198.18.255.254"}}"#,
        ],
    );
    assert!(
        said.contains(&format!(
            "host-agent {other} may write only its own Host, not {owner}"
        )),
        "{said}"
    );
    let said = refused_for(
        as_other,
        &[
            "patch",
            "lease",
            "weft-operator",
            "-n",
            "weft-system",
            "--type=merge",
            "-p",
            r#"{"spec":{"holderIdentity":"nobody"}}"#,
        ],
    );
    assert!(
        said.contains(&format!(
            "may write only its own Lease weft-host-{other}, not weft-operator"
        )),
        "{said}"
    );
    let said = refused_for(
        as_other,
        &[
            "patch",
            "wl",
            workload,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"conditions":[]}}"#,
        ],
    );
    assert!(
        said.contains(&format!(
            "may write the status only of Workloads the operator assigned to it, not {namespace}/{workload}"
        )),
        "{said}"
    );
    let said = refused_for(
        &cluster.agents[owner].kubeconfig,
        &[
            "patch",
            "wl",
            workload,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(r#"{{"status":{{"host":"{other}"}}}}"#),
        ],
    );
    assert!(
        said.contains("only the Weft operator records a Workload's assignment"),
        "{said}"
    );
    // Nor does it backdate the Workload's claim to its host names.
    let said = refused_for(
        &cluster.agents[owner].kubeconfig,
        &[
            "patch",
            "wl",
            workload,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"hostnames":[{"name":"taken.localhost","since":"2000-01-01T00:00:00Z"}]}}"#,
        ],
    );
    assert!(
        said.contains("only the Weft operator records when a Workload claimed its host names"),
        "{said}"
    );
    // A token of the host-agent's account not bound to a Pod names no host at all.
    let unbound = cluster.kubectl_ok(&[
        "create",
        "token",
        "weft-host-agent",
        "-n",
        "weft-system",
        "--duration=10m",
    ]);
    let unbound = cluster
        .control_plane
        .kubeconfig_with_token("host-agent-unbound", unbound.trim());
    let said = refused_for(
        &unbound,
        &[
            "patch",
            "host",
            owner,
            "--type=merge",
            "-p",
            r#"{"spec":{"unschedulable":true}}"#,
        ],
    );
    assert!(
        said.contains("must be a ServiceAccount token bound to the host-agent's Pod"),
        "{said}"
    );

    cluster.kubectl_ok(&["create", "namespace", "other"]);
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "other",
        "--from-literal=k=v",
    ]);
    let said = refused_for(
        as_other,
        &[
            "patch",
            "wl",
            workload,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            r#"{"spec":{"components":[{"name":"hello","image":"elsewhere/evil:1"}]}}"#,
        ],
    );
    assert!(said.contains("forbidden"), "{said}");
    let said = refused_for(as_other, &["get", "secret", "creds", "-n", "other"]);
    assert!(said.contains("forbidden"), "{said}");
    // Each refusal left the hosts as they were.
    assert!(cluster.host_ready(owner) && cluster.host_ready(other));
}

/// Runs `host-agent push` of an example to `reference` with `registry_config`'s credentials.
fn push_private(name: &str, reference: &str, registry: &str, registry_config: &std::path::Path) {
    let wasm = weft_e2e::process::workspace_root()
        .join("examples/build")
        .join(format!("{name}.wasm"));
    let output = std::process::Command::new(weft_e2e::process::workspace_bin("host-agent"))
        .arg("push")
        .arg(&wasm)
        .arg(reference)
        .args(["--insecure-registry", registry])
        .arg("--registry-config")
        .arg(registry_config)
        .output()
        .unwrap();
    assert!(output.status.success(), "host-agent push: {output:?}");
}

pub fn a_cached_private_image_needs_accepted_credentials(cluster: &mut Cluster) {
    // --- a private image pulled onto a host for one tenant is not run for another tenant that
    // has no credentials for it: IfNotPresent asks the registry (401), Never refuses outright
    let registry = weft_e2e::registry::Registry::with_user("weft", "s3cret-pass");
    let dir = tempfile::tempdir().unwrap();
    let config =
        weft_e2e::registry::docker_config(dir.path(), &registry.addr, "weft", "s3cret-pass");
    let image = format!("{}:1.0", registry.image("private/hello"));
    push_private("hello-http", &image, &registry.addr, &config);

    for namespace in ["private-a", "private-b"] {
        cluster.kubectl_ok(&["create", "namespace", namespace]);
    }
    // The cluster admin lets host-agents read pull Secrets in these namespaces.
    let chart = weft_e2e::process::workspace_root().join("charts/weft");
    let upgraded = cluster
        .control_plane
        .helm()
        .args(["upgrade", "weft"])
        .arg(&chart)
        .args(["--namespace", "weft-system", "--reuse-values"])
        .args([
            "--set",
            "hostAgent.pullSecrets.namespaces={private-a,private-b}",
        ])
        .output()
        .unwrap();
    assert!(upgraded.status.success(), "helm upgrade: {upgraded:?}");
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "-n",
        "private-a",
        "--docker-server",
        &registry.addr,
        "--docker-username",
        "weft",
        "--docker-password",
        "s3cret-pass",
    ]);
    cluster.start_agent("host-p");
    cluster.kubectl_ok(&["label", "host", "host-p", "pool=private"]);

    let manifest = |namespace: &str, name: &str, extra: &str| {
        format!(
            "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hostSelector: {{matchLabels: {{pool: private}}}}
  components:
    - name: hello
      image: {image}
{extra}  hostInterfaces:
    - namespace: wasi
      package: http
      interfaces: [incoming-handler]
      config: {{host: {name}.{namespace}}}
"
        )
    };
    let apply = |text: String| {
        let out = cluster.control_plane.apply(&text);
        assert!(out.status.success(), "{out:?}");
    };
    apply(manifest(
        "private-a",
        "owner",
        "      imagePullSecrets: [{name: regcred}]\n",
    ));
    let ready = |c: &Cluster, ns: &str, name: &str| {
        c.control_plane.jsonpath(
            &["wl", name, "-n", ns],
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        ) == "True"
    };
    cluster.wait("the owner's Workload Ready", Duration::from_secs(60), |c| {
        ready(c, "private-a", "owner")
    });

    // Same image, same host, another tenant, no credentials.
    apply(manifest("private-b", "guess", ""));
    apply(manifest(
        "private-b",
        "never",
        "      imagePullPolicy: Never\n",
    ));
    let component = |c: &Cluster, name: &str| {
        c.control_plane.jsonpath(
            &["wl", name, "-n", "private-b"],
            "{.status.host} {.status.components[0].reason}: {.status.conditions[?(@.type==\"Ready\")].message}",
        )
    };
    cluster.wait(
        "the other tenant's Workloads refused on host-p",
        Duration::from_secs(60),
        |c| {
            let guess = component(c, "guess");
            let never = component(c, "never");
            guess.starts_with("host-p ")
                && guess.contains("401 Unauthorized")
                && never.starts_with("host-p ErrImageNeverPull")
                && never.contains("pulled with other credentials")
        },
    );
    assert!(!ready(cluster, "private-b", "guess"));
    assert!(!ready(cluster, "private-b", "never"));
    for name in ["guess", "never"] {
        cluster.kubectl_ok(&["delete", "wl", name, "-n", "private-b", "--timeout=30s"]);
    }
    cluster.kubectl_ok(&["delete", "wl", "owner", "-n", "private-a", "--timeout=30s"]);
}
