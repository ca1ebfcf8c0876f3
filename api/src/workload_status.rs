//! The observed state of a Workload (`status`).
//!
//! Two field managers write it with server-side apply, each only its own fields:
//! - the operator ([`crate::labels::OPERATOR_FIELD_MANAGER`]): `phase`, `host`,
//!   `observedGeneration`, `hostnames` and the `Scheduled` condition;
//! - the host-agent running the Workload ([`crate::labels::HOST_AGENT_FIELD_MANAGER`]):
//!   `components` and the `Ready` condition.
//!
//! `conditions` and `components` are list-maps (keyed by `type` and `name`), so each manager owns
//! its own entries. Every optional field is left out when unset, so an apply never claims a field
//! its manager does not set.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The observed state of a Workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Where the Workload is in its life: Pending, Scheduled, Running, Failed or Terminating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Name of the Host the Workload is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,

    /// The `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Latest observations of the Workload's state, one per type: `Scheduled` (assigned to a host) and `Ready` (every component runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The HTTP host names the Workload claims, each with when it first claimed it: of two Workloads claiming one name, the earlier claim holds it. Written by the operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub hostnames: Vec<HostnameClaim>,

    /// State of each component and of the service, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub components: Vec<ComponentStatus>,
}

/// A host name a Workload claims, and since when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostnameClaim {
    /// The host name, normalized (`shop.example.com`).
    pub name: String,
    /// When the Workload first claimed it (and has claimed it since).
    pub since: Time,
}

/// Where the Workload is in its life: Pending, Scheduled, Running, Failed or Terminating.
// This text is also the description of `status.phase` in the CRD: kube's schema generation
// replaces an optional enum field's description with the enum's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Accepted, waiting for a Host that can run it.
    Pending,
    /// Assigned to a Host, which is pulling and starting its components.
    Scheduled,
    /// Every component has started on its Host.
    Running,
    /// A component could not be pulled or started, or the service used up its restarts.
    Failed,
    /// Being deleted: its components are stopping.
    Terminating,
}

/// The state of one component (or the service) on its host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Name of the component, as in `spec.components[].name` or `spec.service.name`.
    pub name: String,

    /// Digest of the image that runs (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,

    /// Waiting, Starting, Running, Restarting, Failed or Completed.
    pub state: ComponentState,

    /// A CamelCase word for why the component is in its state, in the kubelet's vocabulary where
    /// one fits (`ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`, `InvalidImageName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// How many times the service has been restarted (always 0 for components).
    #[serde(default)]
    pub restarts: u32,

    /// Why the component is in its state, when that needs explaining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// The image reference the component was resolved to: `registry/repository@sha256:…` of
    /// its manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,

    /// WIT interfaces the component imports, read from its binary (`wasi:http/types@0.2.4`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,

    /// WIT interfaces the component exports, read from its binary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<String>,
}

/// The state of one component on its host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ComponentState {
    /// Not started yet: the image is being pulled or compiled.
    #[default]
    Waiting,
    /// Compiled; being instantiated and linked.
    Starting,
    /// Serving invocations (components) or running (the service).
    Running,
    /// The service exited or trapped and waits out its back-off before starting again.
    Restarting,
    /// Could not be pulled, compiled or linked, or the service used up its restarts.
    Failed,
    /// The service exited successfully and will not run again.
    Completed,
}
