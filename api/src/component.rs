//! A component of a Workload (`spec.components[]`) and the long-running service
//! (`spec.service`), which shares all of a component's fields.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config_source::{ConfigSource, EnvVarSource};
use crate::patterns::{
    ABSOLUTE_PATH, DNS_LABEL, DNS_SUBDOMAIN, DURATION, ENV_VAR_NAME, MEMORY_QUANTITY,
};
use crate::pool::Pool;
use crate::quantity::{QuantityError, parse_duration, parse_memory};

/// Most volume mounts one component may declare (bounds the cost of the CEL rules that check them).
pub const MAX_VOLUME_MOUNTS: u32 = 16;

/// A WebAssembly component of the Workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::workload_rules::pool_within_concurrency())]
pub struct Component {
    /// Name of the component, unique within the Workload (a DNS label: lower-case letters, digits and '-', at most 63 characters).
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_LABEL))]
    pub name: String,

    /// OCI reference of the component, by tag (`ghcr.io/org/greet:0.1.0`) or by digest (`ghcr.io/org/greet@sha256:…`).
    #[schemars(length(min = 1, max = 1024))]
    pub image: String,

    /// When to pull the image: Always, IfNotPresent or Never. Defaults to Always for a `:latest` or untagged image and to IfNotPresent otherwise, as for Pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Secrets in the Workload's namespace holding registry credentials (`kubernetes.io/dockerconfigjson`) used to pull the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub image_pull_secrets: Vec<SecretRef>,

    /// Configuration values the component reads through `wasi:config/store`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,

    /// Environment variables the component sees through `wasi:cli/environment`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub env: Vec<EnvVar>,

    /// ConfigMaps and Secrets of the Workload's namespace whose every key becomes an environment variable (keys that are not valid names are skipped). `env` wins over them; of two sources, the later one wins. Updates reach the running component (docs/configuration.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::config_source::MAX_SOURCES))]
    pub env_from: Vec<ConfigSource>,

    /// Volumes of the Workload (`spec.volumes`) to mount into the component as preopened directories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_VOLUME_MOUNTS))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["mountPath".into()]))]
    pub volume_mounts: Vec<VolumeMount>,

    /// Resources one instance of the component may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,

    /// Warm instances kept between invocations (docs/runtime.md). Unset: a fresh instance for every invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Pool>,

    /// Hosts the component may send outgoing HTTP requests to (`api.example.com`, `api.example.com:8443`). Empty allows none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub allowed_hosts: Vec<String>,
}

/// The Workload's long-running component: started once, restarted with back-off when it exits or traps. It must export `wasi:cli/run` or exactly one interface.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// The component the service runs; its fields sit directly under `service`.
    #[serde(flatten)]
    pub component: Component,

    /// How many times the service is restarted after it exits or traps before the Workload is marked Failed. Unset means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<u32>,
}

/// When to pull the image: Always, IfNotPresent or Never. Defaults to Always for a `:latest` or untagged image and to IfNotPresent otherwise, as for Pods.
// This text is also the description of `imagePullPolicy` in the CRD: kube's schema generation
// replaces an optional enum field's description with the enum's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    /// Pull on every start, reusing the cached image when its digest has not changed.
    Always,
    /// Pull only when the image is not cached on the host.
    IfNotPresent,
    /// Never pull; the image must already be cached on the host.
    Never,
}

/// A reference to a Secret in the Workload's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN))]
    pub name: String,
}

/// An environment variable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.valueFrom) || !has(self.value) || self.value == ''").message("set value or valueFrom, not both").reason(Reason::FieldValueInvalid))]
pub struct EnvVar {
    /// Name of the variable.
    #[schemars(length(min = 1, max = 256), regex(pattern = ENV_VAR_NAME))]
    pub name: String,

    /// Value of the variable. Defaults to the empty string.
    #[serde(default)]
    pub value: String,

    /// Where the value comes from instead: a key of a ConfigMap or Secret of the Workload's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// A volume mounted into a component.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// Name of a volume declared in `spec.volumes`.
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_LABEL))]
    pub name: String,

    /// Absolute path at which the component sees the volume (`/data`).
    #[schemars(length(min = 1, max = 1024), regex(pattern = ABSOLUTE_PATH))]
    pub mount_path: String,

    /// Mount the volume read-only. Defaults to false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Resources one instance of a component may use. The host reserves `memory × maxConcurrency` of its memory budget for the component while it runs, and refuses a Workload that does not fit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Most memory one instance may use (all its linear memories and tables together), as a Kubernetes quantity in bytes (`64Mi`, `1Gi`); at most 4Gi. An instance that needs more traps. Defaults to 64Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = MEMORY_QUANTITY))]
    #[x_kube(validation = Rule::new("quantity(self).compareTo(quantity('4Gi')) <= 0").message("must be at most 4Gi"))]
    pub memory: Option<String>,

    /// Longest one invocation may run (`500ms`, `30s`, `1m30s`) before it is interrupted; at most 1h, and at most the host's --max-timeout (10m by default). Does not apply to the service's main loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = DURATION))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("must be a positive duration, such as 500ms, 30s or 1m30s"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('1h')").message("must be at most 1h"))]
    pub timeout: Option<String>,

    /// Most invocations of the component that may run at the same time on one host (at most 10000). Further ones wait for a slot up to half the timeout, then are answered 503. Defaults to 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_concurrency: Option<u32>,

    /// Largest HTTP request body the component accepts, as a quantity in bytes (`1Mi`); larger requests are answered 413. Defaults to 10Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = MEMORY_QUANTITY))]
    pub max_request_body: Option<String>,
}

impl Limits {
    /// `memory` in bytes, if set.
    pub fn memory_bytes(&self) -> Result<Option<u64>, QuantityError> {
        self.memory.as_deref().map(parse_memory).transpose()
    }

    /// `maxRequestBody` in bytes, if set.
    pub fn max_request_body_bytes(&self) -> Result<Option<u64>, QuantityError> {
        self.max_request_body
            .as_deref()
            .map(parse_memory)
            .transpose()
    }

    /// `timeout` as a [`Duration`], if set.
    pub fn timeout_duration(&self) -> Result<Option<Duration>, QuantityError> {
        self.timeout.as_deref().map(parse_duration).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        let limits = Limits {
            memory: Some("64Mi".into()),
            timeout: Some("1m30s".into()),
            max_concurrency: Some(4),
            max_request_body: Some("1Mi".into()),
        };
        assert_eq!(limits.max_request_body_bytes(), Ok(Some(1 << 20)));
        assert_eq!(limits.memory_bytes(), Ok(Some(64 << 20)));
        assert_eq!(limits.timeout_duration(), Ok(Some(Duration::from_secs(90))));
        assert_eq!(Limits::default().memory_bytes(), Ok(None));
        assert_eq!(Limits::default().timeout_duration(), Ok(None));
    }

    #[test]
    fn service_fields_sit_under_service() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "name": "cron",
            "image": "ghcr.io/weft-dev/cron:0.1.0",
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}],
            "maxRestarts": 5,
        }))
        .unwrap();
        assert_eq!(service.component.name, "cron");
        assert!(service.component.volume_mounts[0].read_only);
        assert_eq!(service.max_restarts, Some(5));
        let back = serde_json::to_value(&service).unwrap();
        assert_eq!(back["maxRestarts"], 5);
        assert_eq!(back["name"], "cron");
    }
}
