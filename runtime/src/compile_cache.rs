//! An on-disk cache of compiled components, keyed by the component's content digest and by the
//! engine's compatibility hash, so a host restart (or a second workload on the same digest) skips
//! Cranelift entirely.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;

use wasmtime::component::Component;

use crate::error::Error;

pub(crate) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// Entries live under a directory named after the engine's settings, so components compiled
    /// with other settings (or another Wasmtime) are never loaded.
    pub(crate) fn new(root: PathBuf, engine: &wasmtime::Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir: root.join(format!("{:016x}", hasher.finish())),
        }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{}.cwasm", digest.replace(':', "-")))
    }

    pub(crate) fn load(&self, engine: &wasmtime::Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `store` below from Wasmtime's own serializer, into a
        // directory only this host writes; Wasmtime still checks the header and engine settings.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                touch(&path);
                Some(component)
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), err = %format!("{err:#}"), "ignoring unusable cache entry");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes atomically (temp file, then rename) so a crash never leaves a torn entry.
    pub(crate) fn store(&self, component: &Component, digest: &str) -> Result<(), Error> {
        let bytes = component
            .serialize()
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        let io = |source| Error::Cache {
            path: self.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        tmp.write_all(&bytes).map_err(io)?;
        tmp.persist(self.path(digest)).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// Marks an entry as used now: garbage collection on the host removes entries by age of last use.
fn touch(path: &std::path::Path) {
    let touched = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    if let Err(err) = touched {
        tracing::debug!(path = %path.display(), %err, "could not mark a cache entry as used");
    }
}
