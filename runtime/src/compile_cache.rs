//! An on-disk cache of compiled components, keyed by the component's content digest and by the
//! engine's compatibility hash, so a host restart (or a second workload on the same digest) skips
//! Cranelift entirely.
//!
//! A compiled artifact is native code that Wasmtime maps and runs without checking it, so the
//! cache loads only artifacts this host wrote for that digest: each carries an HMAC-SHA256 of
//! the digest and the artifact under a key kept beside the cache (mode 0600), checked over the
//! very bytes that are then deserialized, so neither a forged file nor a genuine entry copied
//! under another component's name is loaded. A file
//! planted by anyone else (through a mount, a shared volume) is removed and the component is
//! compiled again, never run.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::component::Component;

use crate::error::Error;

type Signer = Hmac<Sha256>;

const KEY_FILE: &str = "cache.key";
const MAC_LEN: usize = 32;

pub(crate) struct CompileCache {
    root: PathBuf,
    dir: PathBuf,
    key: Option<[u8; 32]>,
}

impl CompileCache {
    /// Entries live under a directory named after the engine's settings, so components compiled
    /// with other settings (or another Wasmtime) are never loaded.
    pub(crate) fn new(root: PathBuf, engine: &wasmtime::Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let key = match load_or_create_key(&root) {
            Ok(key) => Some(key),
            Err(err) => {
                tracing::warn!(root = %root.display(), %err, "compile cache disabled: no key");
                None
            }
        };
        Self {
            dir: root.join(format!("{:016x}", hasher.finish())),
            root,
            key,
        }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{}.cwasm", digest.replace(':', "-")))
    }

    fn signer(&self) -> Option<Signer> {
        let key = self.key.as_ref()?;
        Some(Signer::new_from_slice(key).expect("HMAC takes any key length"))
    }

    pub(crate) fn load(&self, engine: &wasmtime::Engine, digest: &str) -> Option<Component> {
        let mut signer = self.signer()?;
        let path = self.path(digest);
        let bytes = std::fs::read(&path).ok()?;
        let refuse = |why: &str| {
            tracing::warn!(path = %path.display(), "ignoring compile cache entry: {why}; compiling again");
            let _ = std::fs::remove_file(&path);
            None
        };
        // The artifact, then its MAC under this host's key.
        let Some(split) = bytes.len().checked_sub(MAC_LEN) else {
            return refuse("too short");
        };
        let (artifact, mac) = bytes.split_at(split);
        signer.update(digest.as_bytes());
        signer.update(artifact);
        if signer.verify_slice(mac).is_err() {
            return refuse("not written by this host");
        }
        // SAFETY: these exact bytes were written by `store` below from Wasmtime's own
        // serializer (the MAC proves it); Wasmtime still checks the header and engine settings.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => {
                touch(&path);
                Some(component)
            }
            Err(err) => refuse(&format!("{err:#}")),
        }
    }

    /// Writes atomically (temp file, then rename) so a crash never leaves a torn entry.
    pub(crate) fn store(&self, component: &Component, digest: &str) -> Result<(), Error> {
        let Some(mut signer) = self.signer() else {
            return Ok(());
        };
        let mut bytes = component.serialize().map_err(|source| Error::Engine {
            what: "cannot serialize a compiled component",
            source,
        })?;
        signer.update(digest.as_bytes());
        signer.update(&bytes);
        bytes.extend_from_slice(&signer.finalize().into_bytes());
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

/// The host's cache key: read, or made from the OS's randomness the first time.
fn load_or_create_key(root: &Path) -> std::io::Result<[u8; 32]> {
    let path = root.join(KEY_FILE);
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    std::fs::create_dir_all(root)?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(root)?;
    tmp.write_all(&key)?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    tmp.persist(&path).map_err(|e| e.error)?;
    // Another host process may have won the race: use whatever key is on disk now.
    let bytes = std::fs::read(&path)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| std::io::Error::other("bad cache key"))
}

/// Marks an entry as used now: garbage collection on the host removes entries by age of last use.
fn touch(path: &Path) {
    let touched = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    if let Err(err) = touched {
        tracing::debug!(path = %path.display(), %err, "could not mark a cache entry as used");
    }
}
