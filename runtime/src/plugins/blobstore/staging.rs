//! Where an object being written waits until the guest finishes it: a file in the host's
//! staging directory, written as the guest writes its `output-stream`, so an object of any
//! size never sits whole in memory; dropped unfinished, the file goes with it. What a namespace
//! has staged counts against its own quota, so unfinished values (thousands of them, across
//! instances) cannot fill the agent's disk whatever backend the objects go to.

use parking_lot::Mutex;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tempfile::TempPath;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::plugins::disk_quota::{DiskQuota, QuotaExceeded, file_cost};

/// The most a guest may hand to one `write` of the stream.
const WRITE_BUDGET: usize = crate::store::RESOURCE_BUFFER_BYTES;

/// The staging directory and what each namespace has staged in it.
pub struct StagingArea {
    dir: PathBuf,
    quota: DiskQuota,
}

impl StagingArea {
    /// Staging in `dir`, at most `per_namespace` bytes staged by one namespace at a time.
    /// What a previous run left there (it died with values unfinished) is removed.
    pub fn new(dir: PathBuf, per_namespace: u64) -> Self {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Self {
            dir,
            quota: DiskQuota::empty(per_namespace),
        }
    }

    /// Counts `bytes` more staged by `namespace`, returned when the charge drops.
    pub fn charge(
        self: &Arc<Self>,
        namespace: &Arc<str>,
        bytes: u64,
    ) -> Result<Charge, QuotaExceeded> {
        let mut charge = Charge {
            area: self.clone(),
            namespace: namespace.clone(),
            bytes: 0,
        };
        charge.grow_to(bytes)?;
        Ok(charge)
    }

    /// A new file in the staging directory, removed when its path is dropped.
    pub fn file(&self) -> std::io::Result<(std::fs::File, TempPath)> {
        staging_file(&self.dir)
    }

    /// A fresh staged value for `namespace`, refusing writes past `limit` bytes.
    pub fn create(self: &Arc<Self>, namespace: &Arc<str>, limit: u64) -> std::io::Result<Staged> {
        let charge = self.charge(namespace, 0).map_err(std::io::Error::other)?;
        let (file, path) = self.file()?;
        Ok(Staged {
            file,
            path,
            size: 0,
            limit,
            charge,
        })
    }
}

/// Bytes a namespace has staged, counted until this is dropped.
pub struct Charge {
    area: Arc<StagingArea>,
    namespace: Arc<str>,
    bytes: u64,
}

impl Charge {
    /// Counts a staged file of `len` bytes, if the namespace has room for it.
    fn grow_to(&mut self, len: u64) -> Result<(), QuotaExceeded> {
        let cost = file_cost(len);
        if cost > self.bytes {
            (self.area.quota).change("staging", &self.namespace, cost - self.bytes, 0)?;
            self.bytes = cost;
        }
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.area.quota.release(&self.namespace, self.bytes);
    }
}

/// The bytes of one outgoing value so far.
pub struct Staged {
    file: std::fs::File,
    path: TempPath,
    size: u64,
    limit: u64,
    charge: Charge,
}

impl Staged {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file, with everything written so far on disk, and its charge: keep it until the
    /// backend has taken the file.
    pub fn finish(mut self) -> std::io::Result<(TempPath, u64, Charge)> {
        self.file.flush()?;
        Ok((self.path, self.size, self.charge))
    }
}

/// A new file in `dir`, removed when its path is dropped.
pub fn staging_file(dir: &Path) -> std::io::Result<(std::fs::File, TempPath)> {
    std::fs::create_dir_all(dir)?;
    Ok(tempfile::NamedTempFile::new_in(dir)?.into_parts())
}

/// The guest's `output-stream` of an outgoing value. Writes go straight to the staging file
/// (local disk, a page-cache copy), so when `write` returns the bytes are there for `finish`.
pub struct StagedStream(pub Arc<Mutex<Option<Staged>>>);

impl OutputStream for StagedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut staged = self.0.lock();
        let Some(staged) = staged.as_mut() else {
            return Err(StreamError::Closed);
        };
        let size = staged.size + bytes.len() as u64;
        if size > staged.limit {
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "the object is over the limit of {} bytes",
                staged.limit
            )));
        }
        staged
            .charge
            .grow_to(size)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))?;
        staged
            .file
            .write_all(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))?;
        staged.size = size;
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        match &*self.0.lock() {
            Some(_) => Ok(WRITE_BUDGET),
            None => Err(StreamError::Closed),
        }
    }
}

#[async_trait::async_trait]
impl Pollable for StagedStream {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unfinished values count until they are dropped, per namespace: a guest opening values
    /// in a loop runs into its own quota, not the agent's disk.
    #[test]
    fn unfinished_values_count_against_their_namespace_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("left-by-a-crash"), b"x").unwrap();
        let area = Arc::new(StagingArea::new(dir.path().to_path_buf(), 3 * 4096));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let (greedy, quiet): (Arc<str>, Arc<str>) = ("greedy".into(), "quiet".into());
        let held: Vec<_> = (0..3)
            .map(|_| area.create(&greedy, 1 << 20).unwrap())
            .collect();
        let refused = area.create(&greedy, 1 << 20).err().unwrap().to_string();
        assert!(
            refused.contains("namespace greedy would keep more than 12288 bytes in the staging"),
            "{refused}"
        );
        assert!(area.create(&quiet, 1 << 20).is_ok());
        drop(held);
        let staged = area.create(&greedy, 1 << 20).unwrap();
        let mut stream = StagedStream(Arc::new(Mutex::new(Some(staged))));
        // A value is one block plus its entry at first; a second block fits, a third does not.
        stream.write(Bytes::from(vec![0u8; 4096])).unwrap();
        assert!(stream.write(Bytes::from(vec![0u8; 4096])).is_ok());
        assert!(stream.write(Bytes::from(vec![0u8; 1])).is_err());
    }
}
