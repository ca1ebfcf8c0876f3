//! What a blob store does for `wasi:blobstore`, whatever it stores in. Containers arrive already
//! scoped to the Workload's namespace (see [`ContainerName`]); bytes move as streams, never
//! whole in memory (on the way in they are staged in a file, see [`super::staging`]).

use async_trait::async_trait;
use tempfile::TempPath;
use tokio::io::AsyncRead;

/// A container as a backend stores it: the Workload's namespace and the container's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerName {
    /// The namespace of the Workload using the container.
    pub namespace: String,
    /// The container's name as the guest gave it, already checked (see [`ContainerName::new`]).
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

/// Why a blob backend could not do what was asked; the guest gets it as an error string.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The request is refused as asked (a bad name, a quota exceeded, an object changed mid-read);
    /// the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The container does not exist; holds its name.
    #[error("container {0} does not exist")]
    NoContainer(String),
    /// A container of that name already exists; holds its name.
    #[error("container {0} already exists")]
    ContainerExists(String),
    /// The object does not exist in the container.
    #[error("object {object} does not exist in container {container}")]
    NoObject {
        /// The container's name, without its namespace.
        container: String,
        /// The object's name.
        object: String,
    },
    /// The backend's storage failed: an I/O error, an unreachable server or a full disk quota.
    #[error("{backend} backend: {reason}")]
    Unavailable {
        /// The failing backend's name, or `staging` for the staging area.
        backend: &'static str,
        /// What failed, as the backend reported it.
        reason: String,
    },
}

impl BackendError {
    /// The [`BackendError::NoObject`] for `object` in `container`.
    pub fn no_object(container: &ContainerName, object: &str) -> Self {
        Self::NoObject {
            container: container.name.clone(),
            object: object.to_string(),
        }
    }
}

/// What a backend knows of a stored object besides its bytes.
pub struct ObjectInfo {
    /// Its length in bytes.
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// An object's bytes (or a range of them) as they are read.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// A store of containers and their objects for `wasi:blobstore`; implement it to offer another
/// backend through [`Backends::blobstore`](crate::plugins::Backends::blobstore).
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

    /// The object's size and creation time, or `None` if there is none;
    /// [`BackendError::NoContainer`] if the container does not exist.
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
