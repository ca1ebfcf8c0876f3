//! Volumes of a Workload (`spec.volumes[]`), which components mount as preopened directories.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::patterns::{ABSOLUTE_PATH, DNS_LABEL, MEMORY_QUANTITY};

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

    /// A directory of the host-agent's filesystem. Refused unless it lies under a prefix the host's operator allows (`--allow-host-path`; none by default in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPath>,
}

/// An empty directory under the host-agent's data directory. It lives as long as the Workload runs on that host: kept when the Workload is updated, removed when it stops there or moves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmptyDir {
    /// Most data the directory may hold, as a quantity in bytes (`64Mi`). Past it, components get the volume read-only until it shrinks; nothing written is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = MEMORY_QUANTITY))]
    pub size_limit: Option<String>,
}

/// A directory of the host-agent's filesystem.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostPath {
    /// Absolute path of the directory on the host.
    #[schemars(length(min = 1, max = 4096), regex(pattern = ABSOLUTE_PATH))]
    pub path: String,
}
