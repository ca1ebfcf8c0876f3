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
            "service-named-like-a-component",
            VALID.to_string()
                + "  service:\n    name: api\n    image: registry.example.com/team/svc:1\n",
            &["spec", "service"],
        ),
    ];
    for (name, yaml, needles) in cases {
        let stderr = refused(&plane, name, yaml);
        for needle in *needles {
            assert!(
                stderr.contains(needle),
                "{name}: {needle:?} not in the API server's answer:\n{stderr}"
            );
        }
    }
    // Nothing invalid was stored.
    let stored = plane.kubectl_ok(&["get", "workloads", "-o", "name"]);
    assert_eq!(stored.trim(), "workload.weft.dev/valid");
}
