//! The CRDs' CEL rules, evaluated client-side (kube's `cel` feature) against the generated schema,
//! as the API server would on create.

use kube::CustomResourceExt;
use kube::core::cel::{ValidationErrors, Validator};
use serde_json::{Value, json};
use weft_api::Workload;

const EXAMPLE: &str = include_str!("fixtures/workload.yaml");

fn workload_schema() -> Value {
    let crd = Workload::crd();
    let schema = crd.spec.versions[0].schema.as_ref().unwrap();
    serde_json::to_value(schema.open_api_v3_schema.as_ref().unwrap()).unwrap()
}

fn validate(object: &Value) -> Result<(), ValidationErrors> {
    Validator::new().validate(&workload_schema(), object, None)
}

fn example() -> Value {
    serde_yaml::from_str(EXAMPLE).unwrap()
}

/// Validates the example after `edit`, expecting exactly one failure; returns its path and
/// message.
fn rejected(edit: impl FnOnce(&mut Value)) -> (String, String) {
    let mut object = example();
    edit(&mut object);
    let errors = validate(&object).expect_err("the edited example should be rejected");
    assert_eq!(errors.len(), 1, "{errors}");
    (errors[0].field_path.clone(), errors[0].message.clone())
}

#[test]
fn example_passes() {
    validate(&example()).unwrap();
}

#[test]
fn minimal_workload_passes() {
    validate(&json!({
        "apiVersion": "weft.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "min"},
        "spec": {"components": [{"name": "a", "image": "ghcr.io/x/a:1"}]},
    }))
    .unwrap();
}

#[test]
fn component_mount_must_name_a_declared_volume() {
    let (path, message) = rejected(|w| {
        w["spec"]["components"][0]["volumeMounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "logs", "mountPath": "/logs"}));
        w["spec"]["components"][1]["volumeMounts"] = json!([{"name": "cache", "mountPath": "/c"}]);
    });
    assert_eq!(path, "spec.components");
    assert_eq!(
        message,
        "a component's volumeMounts must name volumes declared in spec.volumes"
    );
}

#[test]
fn component_mount_without_any_volumes() {
    let (path, message) = rejected(|w| {
        w["spec"].as_object_mut().unwrap().remove("volumes");
        w["spec"].as_object_mut().unwrap().remove("service");
    });
    assert_eq!(path, "spec.components");
    assert!(
        message.starts_with("a component's volumeMounts"),
        "{message}"
    );
}

#[test]
fn service_mount_must_name_a_declared_volume() {
    let (path, message) = rejected(|w| {
        w["spec"]["service"]["volumeMounts"][0]["name"] = json!("nope");
    });
    assert_eq!(path, "spec.service.volumeMounts");
    assert_eq!(
        message,
        "the service's volumeMounts must name volumes declared in spec.volumes"
    );
}

#[test]
fn service_name_must_differ_from_components() {
    let (path, message) = rejected(|w| w["spec"]["service"]["name"] = json!("greet"));
    assert_eq!(path, "spec.service.name");
    assert_eq!(
        message,
        "the service's name is already the name of a component; names must be unique within the Workload"
    );
}

#[test]
fn unnamed_host_interfaces_must_not_share_a_package() {
    let (path, message) = rejected(|w| {
        w["spec"]["hostInterfaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"namespace": "wasi", "package": "keyvalue", "interfaces": ["batch"]}));
    });
    assert_eq!(path, "spec.hostInterfaces");
    assert!(
        message.starts_with("hostInterfaces lists one namespace:package more than once"),
        "{message}"
    );
}

#[test]
fn named_host_interfaces_must_not_share_a_name() {
    let (_, message) = rejected(|w| {
        w["spec"]["hostInterfaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"namespace": "wasi", "package": "keyvalue", "name": "cache"}));
    });
    assert!(
        message.starts_with("hostInterfaces lists one namespace:package more than once"),
        "{message}"
    );
}

#[test]
fn same_name_in_different_packages_is_fine() {
    let mut object = example();
    object["spec"]["hostInterfaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"namespace": "wasi", "package": "blobstore", "name": "cache"}));
    validate(&object).unwrap();
}

#[test]
fn volume_needs_exactly_one_source() {
    let both = rejected(|w| w["spec"]["volumes"][1]["hostPath"] = json!({"path": "/tmp"}));
    let neither = rejected(|w| {
        w["spec"]["volumes"][1]
            .as_object_mut()
            .unwrap()
            .remove("emptyDir");
    });
    for (path, message) in [both, neither] {
        assert_eq!(path, "spec.volumes[1]");
        assert_eq!(
            message,
            "a volume needs exactly one source: emptyDir or hostPath"
        );
    }
}

#[test]
fn timeout_is_at_most_an_hour() {
    let (path, message) =
        rejected(|w| w["spec"]["components"][0]["limits"]["timeout"] = json!("2562047h"));
    assert_eq!(path, "spec.components[0].limits.timeout");
    assert_eq!(message, "must be at most 1h");
    let mut object = example();
    object["spec"]["components"][0]["limits"]["timeout"] = json!("1h");
    validate(&object).unwrap();
}

#[test]
fn timeout_must_be_positive() {
    let (path, message) =
        rejected(|w| w["spec"]["components"][0]["limits"]["timeout"] = json!("0s"));
    assert_eq!(path, "spec.components[0].limits.timeout");
    assert_eq!(
        message,
        "must be a positive duration, such as 500ms, 30s or 1m30s"
    );
}

#[test]
fn a_value_comes_from_one_place() {
    let (_, message) = rejected(|w| {
        w["spec"]["components"][0]["env"] = json!([{
            "name": "P",
            "value": "clear",
            "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
        }]);
    });
    assert_eq!(message, "set value or valueFrom, not both");
    let (_, message) = rejected(|w| {
        w["spec"]["components"][0]["env"] = json!([{
            "name": "P",
            "valueFrom": {
                "secretKeyRef": {"name": "db", "key": "password"},
                "configMapKeyRef": {"name": "db", "key": "password"},
            },
        }]);
    });
    assert_eq!(
        message,
        "set exactly one of configMapKeyRef and secretKeyRef"
    );
    let (_, message) = rejected(|w| {
        w["spec"]["hostInterfaces"][0]["configFrom"] = json!([{}]);
    });
    assert_eq!(message, "set exactly one of configMapRef and secretRef");
}
