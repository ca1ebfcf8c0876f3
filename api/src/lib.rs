//! Weft's Kubernetes API (`weft.dev/v1alpha1`): the [`Workload`] and [`Host`] custom resources,
//! the names Weft writes onto objects ([`labels`]) and WIT interface names ([`WitInterface`]).

#[cfg(feature = "crd")]
pub mod assignment;
#[cfg(feature = "crd")]
pub mod component;
#[cfg(feature = "crd")]
pub mod config_source;
mod error_chain;
#[cfg(all(feature = "crd", feature = "oci"))]
pub mod fuzz_targets;
#[cfg(feature = "crd")]
pub mod host;
#[cfg(feature = "crd")]
pub mod host_interface;
pub mod hostnames;
#[cfg(feature = "crd")]
pub mod labels;
pub mod limit_defaults;
#[cfg(feature = "crd")]
pub mod manifest;
#[cfg(feature = "oci")]
pub mod oci_layout;
#[cfg(feature = "crd")]
pub mod patterns;
#[cfg(feature = "crd")]
pub mod pool;
#[cfg(feature = "crd")]
pub mod quantity;
#[cfg(feature = "crd")]
pub mod replica;
pub mod subjects;
#[cfg(feature = "crd")]
pub mod volume;
pub mod wit;
#[cfg(feature = "crd")]
pub mod workload;
#[cfg(feature = "crd")]
pub mod workload_deployment;
#[cfg(feature = "crd")]
pub mod workload_rules;
#[cfg(feature = "crd")]
pub mod workload_status;

#[cfg(feature = "crd")]
pub use component::{Component, EnvVar, Limits, PullPolicy, SecretRef, Service, VolumeMount};
pub use error_chain::error_chain;
#[cfg(feature = "crd")]
pub use host::{Host, HostCapacity, HostSpec, HostStatus, ServedInterface};
#[cfg(feature = "crd")]
pub use host_interface::HostInterface;
#[cfg(feature = "crd")]
pub use pool::Pool;
#[cfg(feature = "crd")]
pub use quantity::{QuantityError, parse_duration, parse_memory};
#[cfg(feature = "crd")]
pub use volume::{EmptyDir, HostPath, Volume};
pub use wit::{WitInterface, WitParseError, version_compatible};
#[cfg(feature = "crd")]
pub use workload::{KubernetesOptions, ServiceRef, Workload, WorkloadSpec};
#[cfg(feature = "crd")]
pub use workload_deployment::{
    DeploymentStrategy, RollingUpdate, StrategyType, TemplateMetadata, WorkloadDeployment,
    WorkloadDeploymentSpec, WorkloadDeploymentStatus, WorkloadTemplate,
};
#[cfg(feature = "crd")]
pub use workload_status::{ComponentState, ComponentStatus, HostnameClaim, Phase, WorkloadStatus};
