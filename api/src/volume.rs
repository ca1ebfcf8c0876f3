//! Volumes of a Workload (`spec.volumes[]`), which components mount as preopened directories.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::patterns::{ABSOLUTE_PATH, DNS_LABEL};

/// Most volumes one Workload may declare (bounds the cost of the CEL rules that check mounts).
pub const MAX_VOLUMES: u32 = 16;

/// A directory that components of the Workload can mount. Exactly one source must be set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.emptyDir) != has(self.hostPath)").message("a volume needs exactly one source: emptyDir or hostPath"))]
pub struct Volume {
    /// Name of the volume, unique within the Workload; `volumeMounts[].name` refers to it.
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_LABEL))]
    pub name: String,

    /// An empty directory created on the host when the Workload starts there and deleted with it; shared by the Workload's components that mount it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDir>,

    /// A directory of the host-agent's filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPath>,
}

/// An empty directory that lives as long as the Workload runs on its host. Takes no fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EmptyDir {}

/// A directory of the host-agent's filesystem.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostPath {
    /// Absolute path of the directory on the host.
    #[schemars(length(min = 1, max = 4096), regex(pattern = ABSOLUTE_PATH))]
    pub path: String,
}
