//! The real kube-apiserver refuses invalid Workloads, and its message names the field: the
//! CRD's schema, list-map keys and CEL rules, enforced where users meet them (`kubectl apply`).

use weft_e2e::ControlPlane;

const VALID: &str = "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: NAME
spec:
  components:
    - name: api
      image: registry.example.com/team/api:1.4
";

/// Applies `yaml` (with NAME filled in) and returns kubectl's stderr, asserting it failed.
fn refused(plane: &ControlPlane, name: &str, yaml: &str) -> String {
    let output = plane.apply(&yaml.replace("NAME", name));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{name} was accepted");
    stderr
}

/// Applies each case (name, manifest, what the refusal must say), asserting each is refused with
/// every one of its needles in the message.
fn refused_naming(plane: &ControlPlane, cases: &[(&str, String, &[&str])]) {
    for (name, yaml, needles) in cases {
        let stderr = refused(plane, name, yaml);
        for needle in *needles {
            assert!(
                stderr.contains(needle),
                "{name}: {needle:?} not in the API server's answer:\n{stderr}"
            );
        }
    }
}

#[test]
fn the_api_server_rejects_invalid_workloads_naming_the_field() {
    let plane = ControlPlane::start();
    let accepted = plane.apply(&VALID.replace("NAME", "valid"));
    assert!(accepted.status.success(), "{accepted:?}");
    let printed = plane.kubectl_ok(&["get", "workloads"]);
    assert!(printed.contains("valid"), "{printed}");

    let cases: &[(&str, String, &[&str])] = &[
        (
            "duplicate-components",
            VALID.to_string() + "    - name: api\n      image: registry.example.com/team/other:1\n",
            &["spec.components[1]", "Duplicate value"],
        ),
        (
            "undeclared-volume",
            VALID.to_string()
                + "      volumeMounts:\n        - name: data\n          mountPath: /data\n",
            &["spec", "volume"],
        ),
        (
            "bad-memory",
            VALID.to_string() + "      limits:\n        memory: lots\n",
            &["spec.components[0].limits.memory"],
        ),
        (
            "memory-over-the-cap",
            VALID.to_string() + "      limits:\n        memory: 8Gi\n",
            &["spec.components[0].limits.memory", "must be at most 4Gi"],
        ),
        (
            // An invocation that never ends would outlive its Workload's budget.
            "timeout-over-the-cap",
            VALID.to_string() + "      limits:\n        timeout: 2562047h\n",
            &["spec.components[0].limits.timeout", "must be at most 1h"],
        ),
        (
            // A plugin's configuration is bounded: 150,000 host names would be megabytes.
            "config-value-too-long",
            VALID.to_string()
                + "  hostInterfaces:\n    - namespace: wasi\n      package: http\n      config:\n        host: "
                + &"h.example.com,".repeat(300)
                + "\n",
            &["spec.hostInterfaces[0].config.host", "4096"],
        ),
        (
            "bad-size-limit",
            VALID.to_string()
                + "  volumes:\n    - name: scratch\n      emptyDir:\n        sizeLimit: huge\n",
            &["spec.volumes[0].emptyDir.sizeLimit"],
        ),
        (
            "missing-image",
            VALID.replace("      image: registry.example.com/team/api:1.4\n", ""),
            &["spec.components[0].image", "Required value"],
        ),
        (
            "unknown-policy",
            VALID.to_string() + "      imagePullPolicy: Sometimes\n",
            &["spec.components[0].imagePullPolicy", "Unsupported value"],
        ),
        (
            // Warm instances live within the memory reserved for maxConcurrency instances.
            "pool-over-concurrency",
            VALID.to_string() + "      limits: {maxConcurrency: 2}\n      pool: {size: 3}\n",
            &[
                "spec.components[0].pool.size",
                "at most limits.maxConcurrency",
            ],
        ),
        (
            "pool-over-default-concurrency",
            VALID.to_string() + "      pool: {size: 9}\n",
            &["spec.components[0].pool.size", "default 8"],
        ),
        (
            "pool-idle-timeout",
            VALID.to_string() + "      pool: {size: 1, idleTimeout: forever}\n",
            &["spec.components[0].pool.idleTimeout"],
        ),
        (
            "pooled-service",
            VALID.to_string()
                + "  service:\n    name: svc\n    image: registry.example.com/team/svc:1\n    pool: {size: 1}\n",
            &["spec.service.pool", "never pooled"],
        ),
        (
            "service-named-like-a-component",
            VALID.to_string()
                + "  service:\n    name: api\n    image: registry.example.com/team/svc:1\n",
            &["spec", "service"],
        ),
    ];
    refused_naming(&plane, cases);
    // Nothing invalid was stored.
    let stored = plane.kubectl_ok(&["get", "workloads", "-o", "name"]);
    assert_eq!(stored.trim(), "workload.weft.dev/valid");
}

const VALID_DEPLOYMENT: &str = "apiVersion: weft.dev/v1alpha1
kind: WorkloadDeployment
metadata:
  name: NAME
spec:
  replicas: 2
  strategy:
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}
  template:
    metadata:
      labels: {app: web}
    spec:
      components:
        - name: api
          image: registry.example.com/team/api:1.4
";

#[test]
fn the_api_server_rejects_invalid_workload_deployments_naming_the_field() {
    let plane = ControlPlane::start();
    let accepted = plane.apply(&VALID_DEPLOYMENT.replace("NAME", "valid"));
    assert!(accepted.status.success(), "{accepted:?}");
    // The API server fills in the defaults a Deployment user expects.
    let defaulted = plane.apply(
        &VALID_DEPLOYMENT
            .replace("NAME", "defaults")
            .replace("  replicas: 2\n", ""),
    );
    assert!(defaulted.status.success(), "{defaulted:?}");
    assert_eq!(plane.jsonpath(&["wd", "defaults"], "{.spec.replicas}"), "1");

    let cases: &[(&str, String, &[&str])] = &[
        (
            // weft.dev/host on replicas the operator creates would bypass the admission policy
            // that keeps tenants from choosing their host.
            "weft-label",
            VALID_DEPLOYMENT.replace("{app: web}", "{app: web, weft.dev/host: host-a}"),
            &["spec.template.metadata.labels", "weft.dev/"],
        ),
        (
            "negative-replicas",
            VALID_DEPLOYMENT.replace("replicas: 2", "replicas: -1"),
            &["spec.replicas"],
        ),
        (
            "too-many-replicas",
            VALID_DEPLOYMENT.replace("replicas: 2", "replicas: 100000"),
            &["spec.replicas"],
        ),
        (
            "bad-surge",
            VALID_DEPLOYMENT.replace("maxSurge: 25%", "maxSurge: lots"),
            &[
                "spec.strategy.rollingUpdate.maxSurge",
                "a number of replicas or a percentage",
            ],
        ),
        (
            "negative-unavailable",
            VALID_DEPLOYMENT.replace("maxUnavailable: 1", "maxUnavailable: -1"),
            &["spec.strategy.rollingUpdate.maxUnavailable"],
        ),
        (
            "unknown-strategy",
            VALID_DEPLOYMENT.replace(
                "    rollingUpdate:",
                "    type: Sometimes\n    rollingUpdate:",
            ),
            &["spec.strategy.type", "Unsupported value"],
        ),
        (
            "invalid-template",
            VALID_DEPLOYMENT.replace("      image: registry.example.com/team/api:1.4\n", ""),
            &["spec.template.spec.components[0].image", "Required value"],
        ),
        (
            "a-name-longer-than-a-label-value-can-hold-which-is-sixty-three-chars",
            VALID_DEPLOYMENT.to_string(),
            &["metadata.name", "at most 63 characters"],
        ),
    ];
    refused_naming(&plane, cases);
    let stored = plane.kubectl_ok(&["get", "wd", "-o", "name"]);
    assert_eq!(
        stored.trim(),
        "workloaddeployment.weft.dev/defaults\nworkloaddeployment.weft.dev/valid"
    );
    // `kubectl scale` needs the /scale subresource.
    plane.kubectl_ok(&["scale", "wd/valid", "--replicas=4"]);
    assert_eq!(plane.jsonpath(&["wd", "valid"], "{.spec.replicas}"), "4");
}
