//! Component images: references, pulling from OCI registries with credentials, the host's
//! content-addressed store and its garbage collection, and pushing.

mod credentials;
pub mod gc;
pub mod layout;
mod metrics;
mod pull_error;
mod puller;
mod reference;
mod registry_proxy;
mod store;
mod world;

pub use credentials::{Credentials, default_docker_config};
pub use metrics::ImageMetrics;
pub use pull_error::PullError;
pub use puller::{Puller, client};
pub use reference::{ImageSource, effective_policy};
pub use registry_proxy::{RegistryProxy, RegistryRules};
pub use store::{ImageStore, sha256};
pub use world::world_of;
