//! What a blob store does for `wasi:blobstore`, whatever it stores in. Containers arrive already
//! scoped to the Workload's namespace (see [`ContainerName`]); bytes move as streams, never
//! whole in memory (on the way in they are staged in a file, see [`super::staging`]).

use async_trait::async_trait;
use tempfile::TempPath;
use tokio::io::AsyncRead;

/// A container as a backend stores it: the Workload's namespace and the container's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerName {
    pub namespace: String,
    pub name: String,
}

impl ContainerName {
    /// Checks a container name a guest gave, by the rule bucket names follow.
    pub fn new(namespace: &str, name: &str) -> Result<Self, BackendError> {
        crate::plugins::check_resource_name("container", name).map_err(BackendError::Invalid)?;
        Ok(Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// `<namespace>/<name>`.
    pub fn physical(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0}")]
    Invalid(String),
    #[error("container {0} does not exist")]
    NoContainer(String),
    #[error("container {0} already exists")]
    ContainerExists(String),
    #[error("object {object} does not exist in container {container}")]
    NoObject { container: String, object: String },
    #[error("{backend} backend: {reason}")]
    Unavailable {
        backend: &'static str,
        reason: String,
    },
}

impl BackendError {
    pub fn no_object(container: &ContainerName, object: &str) -> Self {
        Self::NoObject {
            container: container.name.clone(),
            object: object.to_string(),
        }
    }
}

pub struct ObjectInfo {
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// An object's bytes (or a range of them) as they are read.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;

#[async_trait]
pub trait BlobBackend: Send + Sync + 'static {
    /// The name a Workload picks it by (`config.backend`), reported in the Host's status.
    fn name(&self) -> &'static str;

    /// Makes an empty container; [`BackendError::ContainerExists`] if there is one.
    async fn create_container(&self, container: &ContainerName) -> Result<(), BackendError>;

    /// When the container was made (seconds since the epoch), or `None` if there is none.
    async fn container_created(
        &self,
        container: &ContainerName,
    ) -> Result<Option<u64>, BackendError>;

    /// Deletes the container and its objects; nothing happens if there is none.
    async fn delete_container(&self, container: &ContainerName) -> Result<(), BackendError>;

    /// Every object's name, sorted.
    async fn list_objects(&self, container: &ContainerName) -> Result<Vec<String>, BackendError>;

    async fn object_info(
        &self,
        container: &ContainerName,
        object: &str,
    ) -> Result<Option<ObjectInfo>, BackendError>;

    /// Bytes `start..start + len` of an object (the caller has checked the range).
    async fn read(
        &self,
        container: &ContainerName,
        object: &str,
        start: u64,
        len: u64,
    ) -> Result<Reader, BackendError>;

    /// Stores the `size` bytes staged at `staged` as the object, replacing any; all or nothing.
    async fn write(
        &self,
        container: &ContainerName,
        object: &str,
        staged: TempPath,
        size: u64,
    ) -> Result<(), BackendError>;

    /// Deleting an object that does not exist is not an error.
    async fn delete_object(
        &self,
        container: &ContainerName,
        object: &str,
    ) -> Result<(), BackendError>;
}

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
