//! The `Host` custom resource: one per host-agent, created and kept up to date by the agent itself.
//! The operator reads Hosts to place Workloads; a user may set `spec.unschedulable`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::patterns::MEMORY_QUANTITY;
use crate::wit::{WitInterface, WitParseError};

/// How a host-agent can be reached, and whether it takes new Workloads.
// Clippy mistakes the repeated `type_ = "string"` of the printer columns for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(
    CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema,
)]
#[kube(
    group = "weft.dev",
    version = "v1alpha1",
    kind = "Host",
    category = "weft",
    status = "HostStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A host-agent that runs Workloads in Wasmtime. Each agent registers and updates its own Host.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the host-agent is up and accepts Workloads"
    ),
    printcolumn(
        name = "Address",
        type_ = "string",
        json_path = ".spec.address",
        description = "Where the host-agent is reached"
    ),
    printcolumn(
        name = "Workloads",
        type_ = "integer",
        json_path = ".status.workloads",
        description = "How many Workloads the Host runs"
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.version",
        description = "Version of the host-agent",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct HostSpec {
    /// IP address or DNS name at which the host-agent is reached (usually its Pod IP).
    #[schemars(length(min = 1, max = 253))]
    pub address: String,

    /// Port on which the host-agent serves the Workloads' HTTP handlers.
    #[schemars(range(min = 1, max = 65535))]
    pub http_port: u16,

    /// Keeps new Workloads off this Host; those already running stay. Defaults to false.
    #[serde(default)]
    pub unschedulable: bool,
}

/// The observed state of a host-agent, written by the agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// Latest observations of the Host's state, one per type; `Ready` means the agent is up and accepts Workloads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// How much the Host can run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<HostCapacity>,

    /// WIT interfaces the Host's plugins provide to Workloads, and the backend behind each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["interface".into()]))]
    pub interfaces: Vec<ServedInterface>,

    /// How many Workloads the Host runs.
    #[serde(default)]
    pub workloads: u32,

    /// Version of the host-agent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// How much a Host can run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostCapacity {
    /// Most Workloads the Host accepts.
    pub workloads: u32,

    /// Memory the Host can give to Workloads, as a Kubernetes quantity (`4Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = MEMORY_QUANTITY))]
    pub memory: Option<String>,

    /// Component instances the Host can run at once (its pool's slots, `--max-instances`); each
    /// Workload reserves the sum of its components' `maxConcurrency`, and one for a service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u64>,
}

/// A WIT interface a Host's plugins provide.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServedInterface {
    /// The interface, as `namespace:package/interface@version` (`wasi:keyvalue/store@0.2.0-draft`).
    pub interface: String,

    /// What implements it on this Host by default (`memory`, `filesystem`, `redis`, `built-in`, …).
    pub backend: String,

    /// Every backend a Workload may pick for it on this Host (`config.backend`), the default first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<String>,
}

impl ServedInterface {
    /// Parses `interface`.
    pub fn wit(&self) -> Result<WitInterface, WitParseError> {
        self.interface.parse()
    }
}

impl Host {
    /// The interfaces this Host serves that parse as WIT names; the rest are skipped.
    pub fn served_interfaces(&self) -> Vec<WitInterface> {
        self.served_backends()
            .into_iter()
            .map(|(wit, _)| wit)
            .collect()
    }

    /// Each interface the Host serves, with the backends a Workload may pick for it.
    pub fn served_backends(&self) -> Vec<(WitInterface, Vec<String>)> {
        self.status
            .iter()
            .flat_map(|status| &status.interfaces)
            .filter_map(|served| {
                let backends = if served.backends.is_empty() {
                    vec![served.backend.clone()]
                } else {
                    served.backends.clone()
                };
                Some((served.wit().ok()?, backends))
            })
            .collect()
    }
}
