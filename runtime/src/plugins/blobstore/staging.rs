//! Where an object being written waits until the guest finishes it: a file in the host's
//! staging directory, written as the guest writes its `output-stream`, so an object of any
//! size never sits whole in memory; dropped unfinished, the file goes with it.

use parking_lot::Mutex;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tempfile::TempPath;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// The most a guest may hand to one `write` of the stream.
const WRITE_BUDGET: usize = 64 * 1024;

/// The bytes of one outgoing value so far.
pub struct Staged {
    file: std::fs::File,
    path: TempPath,
    size: u64,
    limit: u64,
}

impl Staged {
    /// A fresh staging file in `dir`, refusing writes past `limit` bytes.
    pub fn create(dir: &Path, limit: u64) -> std::io::Result<Self> {
        let (file, path) = staging_file(dir)?;
        Ok(Self {
            file,
            path,
            size: 0,
            limit,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file, with everything written so far on disk.
    pub fn finish(mut self) -> std::io::Result<(TempPath, u64)> {
        self.file.flush()?;
        Ok((self.path, self.size))
    }
}

/// A new file in the staging directory, removed when its path is dropped.
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
