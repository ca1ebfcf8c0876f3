//! The filesystem backend: `<dir>/<namespace>/<bucket>/<key>`, each key a file whose name is
//! the key in URL-safe base64 (so any key is a safe file name), written to a temporary file and
//! renamed so a crash never leaves half a value. State survives host restarts; it stays on the
//! host, so a Workload that moves does not take it along. Each namespace keeps at most its
//! [`DiskQuota`]; its writes happen one at a time, so what is counted is what is on disk.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::BucketName;
use super::backend::{BackendError, KeyValueBackend, incremented, page};
use crate::plugins::disk_quota::{DiskQuota, file_cost};

/// Longest key this backend stores: its base64 must fit a file name.
const MAX_KEY_BYTES: usize = 190;

/// Keys kept as files on the host's disk, surviving restarts; the `filesystem` backend.
pub struct FilesystemKeyValue {
    dir: PathBuf,
    quota: DiskQuota,
}

impl FilesystemKeyValue {
    /// Buckets under `dir`, at most `per_namespace` bytes of them for each namespace.
    pub fn new(dir: impl Into<PathBuf>, per_namespace: u64) -> Self {
        let dir = dir.into();
        Self {
            quota: DiskQuota::new(&dir, per_namespace),
            dir,
        }
    }

    fn bucket_dir(&self, bucket: &BucketName) -> PathBuf {
        self.dir.join(&bucket.namespace).join(&bucket.bucket)
    }

    fn path(&self, bucket: &BucketName, key: &str) -> Result<PathBuf, BackendError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(BackendError::Invalid(format!(
                "keys are at most {MAX_KEY_BYTES} bytes on the filesystem backend"
            )));
        }
        Ok(self.bucket_dir(bucket).join(URL_SAFE_NO_PAD.encode(key)))
    }

    fn io(&self, err: std::io::Error) -> BackendError {
        BackendError::Unavailable {
            backend: "filesystem",
            reason: format!("{}: {err}", self.dir.display()),
        }
    }

    async fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, BackendError> {
        match tokio::fs::read(path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(self.io(err)),
        }
    }

    /// Writes `value` at `path` if the namespace's quota holds it in place of what is there;
    /// the caller holds the namespace's writer lock.
    async fn write(
        &self,
        bucket: &BucketName,
        path: &Path,
        value: Vec<u8>,
    ) -> Result<(), BackendError> {
        let dir = self.bucket_dir(bucket);
        let replaced = match tokio::fs::metadata(path).await {
            Ok(m) => file_cost(m.len()),
            Err(_) => 0,
        };
        let new_bucket = match tokio::fs::metadata(&dir).await {
            Ok(_) => 0,
            Err(_) => file_cost(0),
        };
        let cost = file_cost(value.len() as u64) + new_bucket;
        let namespace = &bucket.namespace;
        (self.quota)
            .change(self.name(), namespace, cost, replaced)
            .map_err(|e| BackendError::Invalid(e.to_string()))?;
        let written = self.write_file(&dir, path, value).await;
        if written.is_err() {
            // Nothing changed on disk: give back what was counted.
            self.quota.release(namespace, cost);
            let _ = self.quota.change(self.name(), namespace, replaced, 0);
        }
        written
    }

    async fn write_file(
        &self,
        dir: &Path,
        path: &Path,
        value: Vec<u8>,
    ) -> Result<(), BackendError> {
        let dir = dir.to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| self.io(e))?;
        let written = tokio::task::spawn_blocking({
            let path = path.to_path_buf();
            move || -> std::io::Result<()> {
                use std::io::Write;
                let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
                tmp.write_all(&value)?;
                tmp.persist(path).map_err(|e| e.error)?;
                Ok(())
            }
        })
        .await
        .map_err(|e| self.io(std::io::Error::other(e)))?;
        written.map_err(|e| self.io(e))
    }
}

#[async_trait]
impl KeyValueBackend for FilesystemKeyValue {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    async fn get(&self, bucket: &BucketName, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.read(&self.path(bucket, key)?).await
    }

    async fn set(
        &self,
        bucket: &BucketName,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), BackendError> {
        let path = self.path(bucket, key)?;
        let _writer = self.quota.writer(&bucket.namespace).await;
        self.write(bucket, &path, value).await
    }

    async fn delete(&self, bucket: &BucketName, key: &str) -> Result<(), BackendError> {
        let path = self.path(bucket, key)?;
        let _writer = self.quota.writer(&bucket.namespace).await;
        let size = match tokio::fs::metadata(&path).await {
            Ok(m) => m.len(),
            Err(_) => return Ok(()),
        };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                self.quota.release(&bucket.namespace, file_cost(size));
                Ok(())
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(self.io(err)),
        }
    }

    async fn list_keys(
        &self,
        bucket: &BucketName,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), BackendError> {
        let mut keys = Vec::new();
        match std::fs::read_dir(self.bucket_dir(bucket)) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    // Temporary files of writes in progress do not decode as keys.
                    if let Some(key) = name
                        .to_str()
                        .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
                        .and_then(|k| String::from_utf8(k).ok())
                    {
                        keys.push(key);
                    }
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(self.io(err)),
        }
        keys.sort();
        Ok(page(keys.into_iter(), cursor))
    }

    async fn increment(
        &self,
        bucket: &BucketName,
        key: &str,
        delta: u64,
    ) -> Result<u64, BackendError> {
        let path = self.path(bucket, key)?;
        // Read, add, write: one at a time in the namespace.
        let _writer = self.quota.writer(&bucket.namespace).await;
        let value = incremented(self.read(&path).await?.as_deref(), delta)?;
        self.write(bucket, &path, value.to_string().into_bytes())
            .await?;
        Ok(value)
    }
}
