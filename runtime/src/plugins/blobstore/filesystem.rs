//! The filesystem backend: `<dir>/<namespace>/<container>/<object>`, each object a file whose
//! name is the object's name in URL-safe base64 (so any name is a safe file name). A finished
//! object is renamed into place from the staging directory (on the same filesystem), so a
//! reader never sees half an object. State survives host restarts and stays on the host. Each
//! namespace keeps at most its [`DiskQuota`]; its changes happen one at a time, so what is
//! counted is what is on disk.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tempfile::TempPath;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::backend::{BackendError, BlobBackend, ContainerName, ObjectInfo, Reader};
use crate::plugins::disk_quota::{DiskQuota, file_cost, usage};

/// Longest object name this backend stores: its base64 must fit a file name.
const MAX_NAME_BYTES: usize = 190;

/// Objects kept as files on the host's disk, surviving restarts; the `filesystem` backend.
pub struct FilesystemBlobs {
    dir: PathBuf,
    quota: DiskQuota,
}

impl FilesystemBlobs {
    /// Containers under `dir`, at most `per_namespace` bytes of them for each namespace; the
    /// staging directory must be on the same filesystem.
    pub fn new(dir: impl Into<PathBuf>, per_namespace: u64) -> Self {
        let dir = dir.into();
        Self {
            quota: DiskQuota::new(&dir, per_namespace),
            dir,
        }
    }

    fn over_quota(&self, e: crate::plugins::disk_quota::QuotaExceeded) -> BackendError {
        BackendError::Unavailable {
            backend: "filesystem",
            reason: e.to_string(),
        }
    }

    fn container_dir(&self, container: &ContainerName) -> PathBuf {
        self.dir.join(&container.namespace).join(&container.name)
    }

    fn path(&self, container: &ContainerName, object: &str) -> Result<PathBuf, BackendError> {
        if object.is_empty() || object.len() > MAX_NAME_BYTES {
            return Err(BackendError::Invalid(format!(
                "object names are 1 to {MAX_NAME_BYTES} bytes on the filesystem backend"
            )));
        }
        Ok(self
            .container_dir(container)
            .join(URL_SAFE_NO_PAD.encode(object)))
    }

    async fn existing_dir(&self, container: &ContainerName) -> Result<PathBuf, BackendError> {
        let dir = self.container_dir(container);
        match tokio::fs::metadata(&dir).await {
            Ok(m) if m.is_dir() => Ok(dir),
            _ => Err(BackendError::NoContainer(container.name.clone())),
        }
    }
}

fn failed(err: std::io::Error) -> BackendError {
    BackendError::Unavailable {
        backend: "filesystem",
        reason: err.to_string(),
    }
}

fn seconds(time: std::io::Result<std::time::SystemTime>) -> u64 {
    time.ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

#[async_trait]
impl BlobBackend for FilesystemBlobs {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    async fn create_container(&self, container: &ContainerName) -> Result<(), BackendError> {
        let dir = self.container_dir(container);
        let namespace = &container.namespace;
        let _writer = self.quota.writer(namespace).await;
        (self.quota)
            .change(self.name(), namespace, file_cost(0), 0)
            .map_err(|e| self.over_quota(e))?;
        let created = async {
            tokio::fs::create_dir_all(dir.parent().expect("a namespace dir"))
                .await
                .map_err(failed)?;
            match tokio::fs::create_dir(&dir).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(BackendError::ContainerExists(container.name.clone()))
                }
                Err(e) => Err(failed(e)),
            }
        }
        .await;
        if created.is_err() {
            self.quota.release(namespace, file_cost(0));
        }
        created
    }

    async fn container_created(
        &self,
        container: &ContainerName,
    ) -> Result<Option<u64>, BackendError> {
        match tokio::fs::metadata(self.container_dir(container)).await {
            Ok(m) if m.is_dir() => Ok(Some(seconds(m.created().or(m.modified())))),
            _ => Ok(None),
        }
    }

    async fn delete_container(&self, container: &ContainerName) -> Result<(), BackendError> {
        let dir = self.container_dir(container);
        let _writer = self.quota.writer(&container.namespace).await;
        let freed = file_cost(0) + usage(&dir);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => {
                self.quota.release(&container.namespace, freed);
                Ok(())
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
            _ => Ok(()),
        }
    }

    async fn list_objects(&self, container: &ContainerName) -> Result<Vec<String>, BackendError> {
        let dir = self.existing_dir(container).await?;
        let mut entries = tokio::fs::read_dir(dir).await.map_err(failed)?;
        let mut names = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(failed)? {
            let decoded = entry
                .file_name()
                .to_str()
                .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
                .and_then(|b| String::from_utf8(b).ok());
            names.extend(decoded);
        }
        names.sort();
        Ok(names)
    }

    async fn object_info(
        &self,
        container: &ContainerName,
        object: &str,
    ) -> Result<Option<ObjectInfo>, BackendError> {
        self.existing_dir(container).await?;
        match tokio::fs::metadata(self.path(container, object)?).await {
            Ok(m) => Ok(Some(ObjectInfo {
                size: m.len(),
                created_at: seconds(m.modified()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    async fn read(
        &self,
        container: &ContainerName,
        object: &str,
        start: u64,
        len: u64,
    ) -> Result<Reader, BackendError> {
        let path = self.path(container, object)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackendError::no_object(container, object));
            }
            Err(e) => return Err(failed(e)),
        };
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(failed)?;
        Ok(Box::new(file.take(len)))
    }

    async fn write(
        &self,
        container: &ContainerName,
        object: &str,
        staged: TempPath,
        size: u64,
    ) -> Result<(), BackendError> {
        let path = self.path(container, object)?;
        self.existing_dir(container).await?;
        let namespace = &container.namespace;
        let _writer = self.quota.writer(namespace).await;
        let replaced = match tokio::fs::metadata(&path).await {
            Ok(m) => file_cost(m.len()),
            Err(_) => 0,
        };
        (self.quota)
            .change(self.name(), namespace, file_cost(size), replaced)
            .map_err(|e| self.over_quota(e))?;
        let written = tokio::task::spawn_blocking(move || staged.persist(&path))
            .await
            .map_err(|e| failed(std::io::Error::other(e)))?
            .map_err(|e| failed(e.error));
        if written.is_err() {
            // Nothing changed on disk: give back what was counted.
            self.quota.release(namespace, file_cost(size));
            let _ = self.quota.change(self.name(), namespace, replaced, 0);
        }
        written
    }

    async fn delete_object(
        &self,
        container: &ContainerName,
        object: &str,
    ) -> Result<(), BackendError> {
        self.existing_dir(container).await?;
        let path = self.path(container, object)?;
        let _writer = self.quota.writer(&container.namespace).await;
        let Ok(size) = tokio::fs::metadata(&path).await.map(|m| m.len()) else {
            return Ok(());
        };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                self.quota.release(&container.namespace, file_cost(size));
                Ok(())
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
            _ => Ok(()),
        }
    }
}
