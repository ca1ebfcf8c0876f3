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

/// Label on each replica of a WorkloadDeployment: the WorkloadDeployment's name (its selector).
pub const DEPLOYMENT_LABEL: &str = "weft.dev/deployment";

/// Label on each replica of a WorkloadDeployment: the hash of the template it was made from.
pub const TEMPLATE_HASH_LABEL: &str = "weft.dev/template-hash";

/// Finalizer that keeps a Workload until its components are stopped on their host.
pub const CLEANUP_FINALIZER: &str = "weft.dev/cleanup";

/// Server-side-apply field manager of the operator.
pub const OPERATOR_FIELD_MANAGER: &str = "weft-operator";

/// Server-side-apply field manager of the host-agent.
pub const HOST_AGENT_FIELD_MANAGER: &str = "weft-host-agent";

/// Prefix of the `coordination.k8s.io` Lease a host-agent renews as its heartbeat: the Lease
/// `weft-host-<host name>` lives in the host-agent's namespace.
pub const HOST_LEASE_PREFIX: &str = "weft-host-";

/// Annotation on a Host naming the host-agent's Pod (`namespace/name`), so the operator can act
/// at once when that Pod is deleted.
pub const HOST_POD_ANNOTATION: &str = "weft.dev/pod";

/// Condition types used in `status.conditions` of Workloads and Hosts.
pub mod condition {
    /// Workload and Host: ready to serve. On a Workload, every component runs on its host; on a
    /// Host, the agent is up and accepts Workloads.
    pub const READY: &str = "Ready";

    /// Workload: the operator has assigned the Workload to a Host (`status.host`).
    pub const SCHEDULED: &str = "Scheduled";
}

/// Condition reasons shared between the operator and the host-agent.
pub mod reason {
    /// Workload `Ready=False`: its host has stopped it (the Workload is being deleted or was
    /// moved); the operator may release its finalizer.
    pub const STOPPED: &str = "Stopped";
    /// Host `Ready=False`: the host-agent is shutting down and its Workloads should move.
    pub const SHUTTING_DOWN: &str = "ShuttingDown";
    /// Host `Ready=False`: the host-agent's Lease was not renewed in time.
    pub const LEASE_EXPIRED: &str = "LeaseExpired";
    /// Workload `Scheduled=False`: no Host fits.
    pub const UNSCHEDULABLE: &str = "Unschedulable";
    /// Workload `Scheduled=False`: an older Workload claims one of its HTTP host names.
    pub const HOSTNAME_CONFLICT: &str = "HostnameConflict";
    /// Workload `Scheduled=False`: its namespace may not claim one of its HTTP host names.
    pub const HOSTNAME_NOT_ALLOWED: &str = "HostnameNotAllowed";
}
