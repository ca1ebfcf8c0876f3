//! The generated CRDs carry what the API server needs to validate and display Weft's resources.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Value, json};
use weft_api::{
    ComponentState, HostInterface, Phase, PullPolicy, Workload, WorkloadStatus,
    labels::{API_GROUP, API_VERSION},
};

const EXAMPLE: &str = include_str!("fixtures/workload.yaml");

/// The openAPIV3Schema of the only version of `crd`, as JSON.
fn schema(crd: &CustomResourceDefinition) -> Value {
    assert_eq!(crd.spec.versions.len(), 1);
    let version = &crd.spec.versions[0];
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("an openAPIV3Schema"),
    )
    .unwrap()
}

fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    let found = value.pointer(path);
    found.unwrap_or_else(|| panic!("no {path} in the schema"))
}

const SPEC: &str = "/properties/spec/properties";
const COMPONENT: &str = "/properties/spec/properties/components/items/properties";

#[test]
fn workload_identity() {
    let crd = Workload::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("workloads.weft.dev"));
    assert_eq!(crd.spec.group, API_GROUP);
    assert_eq!(crd.spec.versions[0].name, API_VERSION);
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["wl".to_owned()]));
    assert_eq!(crd.spec.names.categories, Some(vec!["weft".to_owned()]));
}

#[test]
fn host_identity() {
    let crd = weft_api::Host::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("hosts.weft.dev"));
    assert_eq!(crd.spec.scope, "Cluster");
}

#[test]
fn status_subresources() {
    for crd in [Workload::crd(), weft_api::Host::crd()] {
        let subresources = crd.spec.versions[0].subresources.as_ref();
        assert!(
            subresources.and_then(|s| s.status.as_ref()).is_some(),
            "{} has no status subresource",
            crd.spec.names.kind
        );
    }
}

fn columns(crd: &CustomResourceDefinition) -> Vec<(String, String, String)> {
    crd.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| (c.name.to_uppercase(), c.type_.clone(), c.json_path.clone()))
        .collect()
}

#[test]
fn printer_columns() {
    let column = |name: &str, type_: &str, path: &str| (name.into(), type_.into(), path.into());
    let ready = r#".status.conditions[?(@.type=="Ready")].status"#;
    let age = ".metadata.creationTimestamp";
    assert_eq!(
        columns(&Workload::crd()),
        vec![
            column("HOST", "string", ".status.host"),
            column("PHASE", "string", ".status.phase"),
            column("READY", "string", ready),
            column("AGE", "date", age),
        ]
    );
    assert_eq!(
        columns(&weft_api::Host::crd()),
        vec![
            column("READY", "string", ready),
            column("ADDRESS", "string", ".spec.address"),
            column("WORKLOADS", "integer", ".status.workloads"),
            column("VERSION", "string", ".status.version"),
            column("AGE", "date", age),
        ]
    );
}

#[test]
fn components_are_a_map_keyed_by_name() {
    let schema = schema(&Workload::crd());
    let components = at(&schema, &format!("{SPEC}/components"));
    assert_eq!(components["x-kubernetes-list-type"], "map");
    assert_eq!(components["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(components["minItems"], json!(1));
    assert!(components["maxItems"].is_number());
    let required = at(&schema, "/properties/spec/required");
    assert!(required.as_array().unwrap().contains(&json!("components")));

    let volumes = at(&schema, &format!("{SPEC}/volumes"));
    assert_eq!(volumes["x-kubernetes-list-map-keys"], json!(["name"]));
    let status = "/properties/status/properties";
    let conditions = at(&schema, &format!("{status}/conditions"));
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
    let statuses = at(&schema, &format!("{status}/components"));
    assert_eq!(statuses["x-kubernetes-list-map-keys"], json!(["name"]));
}

#[test]
fn component_fields_are_validated() {
    let schema = schema(&Workload::crd());
    let name = at(&schema, &format!("{COMPONENT}/name"));
    assert_eq!(name["maxLength"], json!(63));
    assert_eq!(name["pattern"], weft_api::patterns::DNS_LABEL);
    assert_eq!(at(&schema, &format!("{COMPONENT}/image/minLength")), 1);
    assert_eq!(
        at(&schema, &format!("{COMPONENT}/imagePullPolicy/enum")),
        &json!(["Always", "IfNotPresent", "Never"])
    );
    let limits = format!("{COMPONENT}/limits/properties");
    assert_eq!(
        at(&schema, &format!("{limits}/memory/pattern")),
        weft_api::patterns::MEMORY_QUANTITY
    );
    assert_eq!(
        at(&schema, &format!("{limits}/timeout/pattern")),
        weft_api::patterns::DURATION
    );
    assert_eq!(
        at(&schema, &format!("{limits}/maxConcurrency/minimum")),
        1.0
    );
}

#[test]
fn service_has_component_fields_and_max_restarts() {
    let schema = schema(&Workload::crd());
    let component = at(&schema, COMPONENT).as_object().unwrap();
    let service = at(&schema, &format!("{SPEC}/service/properties"))
        .as_object()
        .unwrap();
    for (field, field_schema) in component {
        assert_eq!(service.get(field), Some(field_schema), "service.{field}");
    }
    assert!(service.contains_key("maxRestarts"));
    assert_eq!(
        at(&schema, &format!("{SPEC}/service/required")),
        &json!(["image", "name"])
    );
}

/// Every `(rule, message or messageExpression)` at `path`.
fn rules(schema: &Value, path: &str) -> Vec<(String, String)> {
    at(schema, path)["x-kubernetes-validations"]
        .as_array()
        .unwrap_or_else(|| panic!("no CEL rules at {path}"))
        .iter()
        .map(|rule| {
            let message = rule.get("message").or(rule.get("messageExpression"));
            (
                rule["rule"].as_str().unwrap().to_owned(),
                message
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn spec_cel_rules() {
    let schema = schema(&Workload::crd());
    let rules = rules(&schema, "/properties/spec");
    let expected = [
        weft_api::workload_rules::component_mounts_name_volumes(),
        weft_api::workload_rules::service_mounts_name_volumes(),
        weft_api::workload_rules::service_name_is_unique(),
        weft_api::workload_rules::service_has_no_pool(),
        weft_api::workload_rules::host_interfaces_are_distinct(),
    ];
    assert_eq!(rules.len(), expected.len());
    for (rule, message) in &rules {
        assert!(!message.is_empty(), "{rule} has no message");
        assert!(
            expected.iter().any(|e| &e.rule == rule),
            "unexpected rule {rule}"
        );
    }
    let messages: Vec<&str> = rules.iter().map(|(_, m)| m.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("volumeMounts must name volumes declared in spec.volumes"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("is already the name of a component"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("give each entry of the same package a distinct name"))
    );

    let fields: Vec<Value> = at(&schema, "/properties/spec/x-kubernetes-validations")
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["fieldPath"].clone())
        .collect();
    assert_eq!(
        fields,
        [
            ".components",
            ".service.volumeMounts",
            ".service.name",
            ".service.pool",
            ".hostInterfaces"
        ]
    );
}

#[test]
fn volume_and_timeout_cel_rules() {
    let schema = schema(&Workload::crd());
    assert_eq!(
        rules(&schema, &format!("{SPEC}/volumes/items")),
        [(
            "has(self.emptyDir) != has(self.hostPath)".to_owned(),
            "a volume needs exactly one source: emptyDir or hostPath".to_owned()
        )]
    );
    let timeout = rules(&schema, &format!("{COMPONENT}/limits/properties/timeout"));
    assert_eq!(timeout[0].0, "duration(self) > duration('0s')");
}

#[test]
fn example_workload_deserializes() {
    let workload: Workload = serde_yaml::from_str(EXAMPLE).unwrap();
    let spec = &workload.spec;
    assert_eq!(workload.metadata.name.as_deref(), Some("hello"));
    assert_eq!(spec.components.len(), 2);
    let http = &spec.components[0];
    assert_eq!(http.image_pull_policy, Some(PullPolicy::IfNotPresent));
    assert_eq!(http.image_pull_secrets[0].name, "regcred");
    assert_eq!(http.config["greeting"], "Hello");
    assert_eq!(http.env[0].value, "info");
    assert!(http.volume_mounts[0].read_only);
    let limits = http.limits.as_ref().unwrap();
    assert_eq!(limits.memory_bytes(), Ok(Some(64 << 20)));
    assert_eq!(
        limits.timeout_duration(),
        Ok(Some(std::time::Duration::from_secs(90)))
    );
    assert_eq!(limits.max_concurrency, Some(100));
    assert_eq!(http.allowed_hosts.len(), 2);

    let service = spec.service.as_ref().unwrap();
    assert_eq!(service.component.name, "cron");
    assert_eq!(service.max_restarts, Some(5));
    assert!(!service.component.volume_mounts[0].read_only);
    assert_eq!(spec.all_components().count(), 3);

    let wit: Vec<String> = spec
        .host_interfaces
        .iter()
        .map(|i| i.to_wit().unwrap().to_string())
        .collect();
    assert_eq!(
        wit,
        [
            "wasi:http/incoming-handler@0.2.0",
            "wasi:keyvalue/atomics,store@0.2.0-draft",
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:config",
        ]
    );
    assert_eq!(spec.host_interfaces[2].name.as_deref(), Some("cache"));
    assert!(spec.volumes[1].empty_dir.is_some());
    assert_eq!(
        spec.volumes[0].host_path.as_ref().unwrap().path,
        "/var/lib/weft/data"
    );
    let selector = spec.host_selector.as_ref().unwrap();
    assert_eq!(selector.match_labels.as_ref().unwrap()["zone"], "edge");
    let kubernetes = spec.kubernetes.as_ref().unwrap();
    assert_eq!(kubernetes.service.as_ref().unwrap().name, "hello");
}

#[test]
fn example_workload_round_trips() {
    let workload: Workload = serde_yaml::from_str(EXAMPLE).unwrap();
    let original: Value = serde_yaml::from_str(EXAMPLE).unwrap();
    assert_eq!(serde_json::to_value(&workload).unwrap(), original);
}

#[test]
fn minimal_workload_serializes_without_empty_fields() {
    let workload: Workload = serde_yaml::from_str(
        "
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: min}
spec:
  components:
  - {name: a, image: ghcr.io/x/a:1}
",
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&workload.spec).unwrap(),
        json!({"components": [{"name": "a", "image": "ghcr.io/x/a:1"}]})
    );
    assert_eq!(HostInterface::default().to_wit().ok(), None);
}

#[test]
fn status_serializes_only_what_is_set() {
    // Server-side apply must not claim fields a manager leaves unset.
    let status = WorkloadStatus {
        phase: Some(Phase::Running),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({"phase": "Running"})
    );
    let status: WorkloadStatus = serde_json::from_value(json!({
        "components": [{"name": "http", "state": "Restarting", "restarts": 2,
                        "imports": ["wasi:http/types@0.2.4"]}],
    }))
    .unwrap();
    assert_eq!(status.components[0].state, ComponentState::Restarting);
    assert_eq!(status.components[0].restarts, 2);
}

/// The API server estimates each CEL rule's worst-case cost from the schema and rejects the CRD
/// when it exceeds its budget; unbounded lists and strings make the estimate explode. Every list
/// the spec rules iterate needs `maxItems`, every string they compare `maxLength`.
#[test]
fn cel_inputs_are_bounded() {
    let schema = schema(&Workload::crd());
    let hi = format!("{SPEC}/hostInterfaces");
    let lists = [
        format!("{SPEC}/components"),
        format!("{COMPONENT}/volumeMounts"),
        format!("{SPEC}/service/properties/volumeMounts"),
        format!("{SPEC}/volumes"),
        hi.clone(),
    ];
    for list in &lists {
        assert!(at(&schema, list)["maxItems"].is_number(), "{list}");
    }
    let strings = [
        format!("{COMPONENT}/name"),
        format!("{COMPONENT}/volumeMounts/items/properties/name"),
        format!("{SPEC}/service/properties/name"),
        format!("{SPEC}/service/properties/volumeMounts/items/properties/name"),
        format!("{SPEC}/volumes/items/properties/name"),
        format!("{hi}/items/properties/namespace"),
        format!("{hi}/items/properties/package"),
        format!("{hi}/items/properties/name"),
        format!("{COMPONENT}/limits/properties/timeout"),
    ];
    for string in &strings {
        assert!(at(&schema, string)["maxLength"].is_number(), "{string}");
    }
    // The deepest rule walks components × volumeMounts × volumes.
    let max = |path: &str| at(&schema, path)["maxItems"].as_u64().unwrap();
    let iterations = max(&lists[0]) * max(&lists[1]) * max(&lists[3]);
    assert!(iterations <= 10_000, "{iterations} iterations");
}
