//! The `Workload` custom resource: WebAssembly components, an optional long-running service, the
//! host interfaces they need and their volumes, run together on one Host.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::component::{Component, Service};
use crate::host_interface::{HostInterface, MAX_HOST_INTERFACES};
use crate::patterns::DNS_1035_LABEL;
use crate::volume::{MAX_VOLUMES, Volume};
use crate::workload_rules;
use crate::workload_status::WorkloadStatus;

/// Most components one Workload may have (bounds the cost of the CEL rules that check them).
pub const MAX_COMPONENTS: u32 = 32;

/// The desired state of a Workload.
// Clippy mistakes the repeated `type_ = "string"` of the printer columns for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "weft.dev",
    version = "v1alpha1",
    kind = "Workload",
    namespaced,
    shortname = "wl",
    category = "weft",
    status = "WorkloadStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A set of WebAssembly components, with an optional long-running service, that Weft runs together on one Host.",
    printcolumn(
        name = "Host",
        type_ = "string",
        json_path = ".status.host",
        description = "The Host running the Workload"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Where the Workload is in its life"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether every component runs"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = workload_rules::component_mounts_name_volumes(),
    validation = workload_rules::service_mounts_name_volumes(),
    validation = workload_rules::service_name_is_unique(),
    validation = workload_rules::service_has_no_pool(),
    validation = workload_rules::host_interfaces_are_distinct()
)]
pub struct WorkloadSpec {
    /// The components to run, at least one. They are linked together: an import that one component exports is wired to it.
    #[schemars(length(min = 1, max = MAX_COMPONENTS))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub components: Vec<Component>,

    /// A long-running component, started once and restarted with back-off when it exits or traps. Its name must differ from every component's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,

    /// Host interfaces the components need that the Host's plugins provide (wasi:http, wasi:keyvalue, …), with the plugins' configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_HOST_INTERFACES))]
    pub host_interfaces: Vec<HostInterface>,

    /// Directories the components can mount with `volumeMounts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_VOLUMES))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub volumes: Vec<Volume>,

    /// Runs the Workload only on Hosts whose labels match. Unset means any Host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_selector: Option<LabelSelector>,

    /// How the Workload is exposed to the rest of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesOptions>,
}

/// How a Workload is exposed to the rest of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesOptions {
    /// A Service without selector through which Pods and Ingresses reach the Workload's HTTP handlers: the operator keeps its EndpointSlice pointing at the Hosts that run the Workload Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
}

/// A reference to a Service in the Workload's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceRef {
    /// Name of the Service.
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_1035_LABEL))]
    pub name: String,
}

impl WorkloadSpec {
    /// The components followed by the service, if any: everything that runs.
    pub fn all_components(&self) -> impl Iterator<Item = &Component> {
        self.components
            .iter()
            .chain(self.service.iter().map(|service| &service.component))
    }

    /// The memory this Workload reserves on its host ([`crate::limit_defaults::reserved_memory`]
    /// summed, defaults filled in). A limit that does not parse counts as the default: the CRD
    /// rejects such values, and the host refuses the Workload with the parse error.
    pub fn reserved_memory(&self) -> u64 {
        use crate::limit_defaults::{MEMORY_BYTES, reserved_memory};
        self.reservations()
            .map(|(component, instances)| {
                let memory = (component.limits.as_ref())
                    .and_then(|l| l.memory_bytes().ok().flatten())
                    .unwrap_or(MEMORY_BYTES);
                reserved_memory(memory, instances)
            })
            .fold(0, |sum: u64, m| sum.saturating_add(m))
    }

    /// The instance slots this Workload reserves on its host: each component's
    /// `maxConcurrency` (default filled in), and one for the service, as the host counts them.
    pub fn reserved_instances(&self) -> u64 {
        self.reservations()
            .map(|(_, instances)| u64::from(instances))
            .fold(0, u64::saturating_add)
    }

    /// Each component with the instances it may have at once (a service has one).
    fn reservations(&self) -> impl Iterator<Item = (&Component, u32)> {
        use crate::limit_defaults::MAX_CONCURRENCY;
        let components = self.components.iter().map(|c| {
            let concurrency = (c.limits.as_ref())
                .and_then(|l| l.max_concurrency)
                .unwrap_or(MAX_CONCURRENCY);
            (c, concurrency)
        });
        let service = self.service.iter().map(|s| (&s.component, 1));
        components.chain(service)
    }
}
