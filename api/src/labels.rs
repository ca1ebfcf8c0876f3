//! Names Weft writes onto Kubernetes objects: API group, labels, finalizers, field managers and
//! condition types. Use these constants rather than string literals so the operator and the
//! host-agent agree.

/// The API group of Weft's custom resources.
pub const API_GROUP: &str = "weft.dev";

/// The API version of Weft's custom resources.
pub const API_VERSION: &str = "v1alpha1";

/// Label the operator sets on a Workload to assign it to a Host; the value is the Host's name.
/// Each host-agent watches only the Workloads carrying its own name.
pub const HOST_LABEL: &str = "weft.dev/host";

/// Finalizer that keeps a Workload until its components are stopped on their host.
pub const CLEANUP_FINALIZER: &str = "weft.dev/cleanup";

/// Server-side-apply field manager of the operator.
pub const OPERATOR_FIELD_MANAGER: &str = "weft-operator";

/// Server-side-apply field manager of the host-agent.
pub const HOST_AGENT_FIELD_MANAGER: &str = "weft-host-agent";

/// Condition types used in `status.conditions` of Workloads and Hosts.
pub mod condition {
    /// Workload and Host: ready to serve. On a Workload, every component runs on its host; on a
    /// Host, the agent is up and accepts Workloads.
    pub const READY: &str = "Ready";

    /// Workload: the operator has assigned the Workload to a Host (`status.host`).
    pub const SCHEDULED: &str = "Scheduled";
}
