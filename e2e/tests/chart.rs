//! The Helm chart, checked with the real helm: lint, render with default and other values, the
//! values schema refusing bad input, hardened pods, and CRDs identical to `crds/`.

use std::process::{Command, Output};

use weft_e2e::process::workspace_root;
use weft_e2e::registry::tool;

fn helm(args: &[&str]) -> Output {
    Command::new(tool("helm"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap()
}

/// `helm template` of the chart with `set` values, as a GitOps user runs it (no cluster, no
/// `--kube-version`); the rendered YAML.
fn render(set: &[&str]) -> String {
    let mut args = vec![
        "template",
        "weft",
        "charts/weft",
        "--namespace",
        "weft-system",
    ];
    for value in set {
        args.extend(["--set", value]);
    }
    let output = helm(&args);
    assert!(
        output.status.success(),
        "helm template {set:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn kinds(yaml: &str) -> Vec<&str> {
    let mut kinds: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn the_chart_lints() {
    let output = helm(&["lint", "charts/weft", "--strict"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn defaults_render_a_daemonset_and_hardened_pods() {
    let yaml = render(&[]);
    let kinds = kinds(&yaml);
    assert!(
        kinds.contains(&"DaemonSet") && kinds.contains(&"Deployment"),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"ServiceMonitor"));
    for needle in [
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "runAsNonRoot: true",
        "type: RuntimeDefault",
        "fieldPath: status.podIP",
        "fieldPath: metadata.name",
        "path: /readyz",
        "path: /healthz",
        "sizeLimit: 2Gi",
        "sizeLimit: 4Gi",
        "--data-dir=/var/lib/weft",
        "--max-instance-memory=1Gi",
        "--header-timeout=10s",
        "image: weft/host-agent:0.1.0",
        "image: weft/operator:0.1.0",
    ] {
        assert!(yaml.contains(needle), "{needle} missing");
    }
    assert_eq!(
        yaml.matches("drop: [\"ALL\"]").count(),
        3,
        "every container (operator, host-agent, uninstall Job) drops all capabilities"
    );
    // helm uninstall first releases the Workloads' finalizer, with rights that exist only then.
    assert!(yaml.contains("- uninstall\n") && yaml.contains("helm.sh/hook: pre-delete"));
    // Only the operator may set the host label, and no namespace gets extra host names.
    assert!(kinds.contains(&"ValidatingAdmissionPolicy"));
    assert!(yaml.contains(
        r#"request.userInfo.username != "system:serviceaccount:weft-system:weft-operator""#
    ));
    assert!(!yaml.contains("--hostname-grant"));
    // Host-agents roll one at a time, the new one first.
    assert!(yaml.contains("rollingUpdate: {maxSurge: 1, maxUnavailable: 0}"));
    // Isolation by default: no hostPath prefix, the budget from the memory limit.
    assert!(!yaml.contains("--allow-host-path"));
    assert!(!yaml.contains("--memory-budget"));
    // Least privilege by default: no Secret access at all.
    assert!(!yaml.contains("secrets"), "the default RBAC grants Secrets");
}

#[test]
fn other_values_render_what_they_say() {
    let yaml = render(&[
        "hostAgent.kind=Deployment",
        "hostAgent.replicas=3",
        "metrics.serviceMonitor.enabled=true",
        "hostAgent.resources.limits.memory=2Gi",
        "hostAgent.pullSecrets.namespaces={team-a,team-b}",
        "hostAgent.insecureRegistries={registry.internal:5000}",
        "hostAgent.isolation.allowHostPaths={/srv/weft}",
        "hostAgent.isolation.egressDeny={10.0.0.0/8}",
        "hostAgent.isolation.memoryBudget=3Gi",
        "hostAgent.backends.redis.urlSecret.name=weft-redis",
        "hostAgent.backends.redis.urlSecret.key=url",
        "hostAgent.backends.nats.urlSecret.name=weft-nats",
        "hostAgent.backends.nats.urlSecret.key=url",
        "hostAgent.backends.maxMessagesInFlight=64",
        "operator.uninstallHook.enabled=false",
        "operator.hostnames.shop={shop.example.com,*.shop.test}",
    ]);
    assert!(yaml.contains("- --hostname-grant=shop=shop.example.com,*.shop.test\n"));
    assert!(!yaml.contains("pre-delete"), "the uninstall hook is off");
    assert!(yaml.contains("name: WEFT_REDIS_URL"));
    assert!(yaml.contains("name: WEFT_NATS_URL"));
    for secret in ["weft-redis", "weft-nats"] {
        assert!(
            yaml.contains(&format!(
                r#"secretKeyRef: {{name: "{secret}", key: "url"}}"#
            )),
            "{yaml}"
        );
    }
    assert!(!yaml.contains("nats://"), "no URL in plain values");
    for arg in [
        "--max-messages-in-flight=64",
        "--allow-host-path=/srv/weft",
        "--egress-deny=10.0.0.0/8",
        "--memory-budget=3Gi",
    ] {
        assert!(yaml.contains(arg), "{arg} missing");
    }
    let kinds = kinds(&yaml);
    assert!(!kinds.contains(&"DaemonSet"), "{kinds:?}");
    assert!(kinds.contains(&"ServiceMonitor"));
    assert!(yaml.contains("replicas: 3"));
    assert!(yaml.contains("memory: 2Gi"));
    assert!(yaml.contains("--insecure-registry=registry.internal:5000"));
    for namespace in ["team-a", "team-b"] {
        assert!(
            yaml.contains(&format!("namespace: {namespace}")),
            "{namespace}"
        );
    }
    let cluster_wide = render(&["hostAgent.pullSecrets.clusterWide=true"]);
    assert!(cluster_wide.contains("resources: [\"secrets\"]"));
    // OpenTelemetry variables reach both daemons.
    let otel = render(&["otel.OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"]);
    assert_eq!(
        otel.matches(
            "name: OTEL_EXPORTER_OTLP_ENDPOINT\n              value: \"http://collector:4318\""
        )
        .count(),
        2,
        "{otel}"
    );
    // Values from ConfigMaps and Secrets: a Role in each listed namespace, nowhere else.
    let sources = render(&["hostAgent.secrets.namespaces={shop}"]);
    let roles: Vec<serde_yaml::Value> = objects(&sources, "Role")
        .into_iter()
        .filter(|r| {
            r["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with("-sources")
        })
        .collect();
    assert_eq!(roles.len(), 1, "{sources}");
    assert_eq!(roles[0]["metadata"]["namespace"], "shop");
    assert_eq!(
        roles[0]["rules"][0]["resources"],
        serde_yaml::to_value(["secrets", "configmaps"]).unwrap()
    );
    assert_eq!(
        roles[0]["rules"][0]["verbs"],
        serde_yaml::to_value(["get"]).unwrap()
    );
}

#[test]
fn the_schema_refuses_wrong_values() {
    for (set, needle) in [
        ("hostAgent.kind=Pod", "hostAgent/kind"),
        ("hostAgent.httpPort=70000", "hostAgent/httpPort"),
        ("hostAgent.leaseDuration=soon", "hostAgent/leaseDuration"),
        ("operator.replicas=0", "operator/replicas"),
        ("operator.typo=1", "typo"),
        (
            "hostAgent.isolation.egressDeny={everything}",
            "hostAgent/isolation/egressDeny/0",
        ),
        (
            "operator.hostnames.shop={shop example.com}",
            "operator/hostnames/shop/0",
        ),
    ] {
        let output = helm(&["template", "weft", "charts/weft", "--set", set]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{set} was accepted");
        assert!(stderr.contains(needle), "{set}: {stderr}");
    }
}

#[test]
fn chart_crds_are_the_generated_crds() {
    for name in ["workloads.weft.dev.yaml", "hosts.weft.dev.yaml"] {
        let root = workspace_root();
        let generated = std::fs::read(root.join("crds").join(name)).unwrap();
        let charted = std::fs::read(root.join("charts/weft/crds").join(name)).unwrap();
        assert!(
            generated == charted,
            "charts/weft/crds/{name} differs from crds/{name}: run `make crds`"
        );
    }
}

/// The rendered objects of `kind`, as YAML values.
fn objects(yaml: &str, kind: &str) -> Vec<serde_yaml::Value> {
    yaml.split("\n---")
        .filter_map(|doc| serde_yaml::from_str::<serde_yaml::Value>(doc).ok())
        .filter(|o| o["kind"].as_str() == Some(kind))
        .collect()
}

#[test]
fn the_admin_port_is_kept_from_tenants() {
    let yaml = render(&[]);
    let services = objects(&yaml, "Service");
    let service = |name: &str| {
        services
            .iter()
            .find(|s| s["metadata"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no Service {name}"))
    };
    // The Service tenants' Workloads are reached through has a ClusterIP and only the HTTP port.
    let ports = serde_yaml::to_string(&service("weft-host-agent")["spec"]["ports"]).unwrap();
    assert!(!ports.contains("admin"), "{ports}");
    // The admin port is headless: no ClusterIP any Workload could name in allowedHosts.
    let metrics = &service("weft-host-agent-metrics")["spec"];
    assert_eq!(metrics["clusterIP"].as_str(), Some("None"));
    // The NetworkPolicy opens the HTTP port only, until metricsFrom names who scrapes.
    let policies = objects(&yaml, "NetworkPolicy");
    let rules = serde_yaml::to_string(&policies[0]["spec"]["ingress"]).unwrap();
    assert_eq!(rules.matches("port:").count(), 1, "{rules}");
    assert!(
        rules.contains("port: http") && !rules.contains("admin"),
        "{rules}"
    );
    // Workloads reach no port of their node.
    assert!(yaml.contains("--egress-deny=$(HOST_IP)") && yaml.contains("fieldPath: status.hostIP"));

    let yaml =
        render(&["networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring"]);
    let rules =
        serde_yaml::to_string(&objects(&yaml, "NetworkPolicy")[0]["spec"]["ingress"]).unwrap();
    assert!(
        rules.contains("port: admin") && rules.contains("team: monitoring"),
        "{rules}"
    );
    assert!(objects(&render(&["networkPolicy.enabled=false"]), "NetworkPolicy").is_empty());
}
