//! The host's content-addressed image store: component blobs by digest, and which digest each
//! pulled reference last resolved to.
//!
//! ```text
//! <root>/blobs/sha256/<hex>      component bytes, verified when written and when read
//! <root>/refs/<hex>.json         reference -> manifest and layer digests (for tags)
//! <root>/tmp/                    writes in progress; stale ones are collected as garbage
//! ```
//! A blob is written to `tmp/` and renamed into `blobs/` only once complete and verified, so a
//! partial download never counts as present. Reading or resolving an entry marks it used, for
//! garbage collection by age.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub struct ImageStore {
    root: PathBuf,
}

/// What a reference resolved to when it was last pulled.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedRef {
    pub reference: String,
    pub manifest_digest: String,
    pub layer_digest: String,
    /// Fingerprints of the credentials the registry accepted for this reference
    /// ([`super::credentials::fingerprint`]); `anonymous` when it needed none. Another
    /// Workload may use the stored image without asking the registry only with one of these.
    #[serde(default)]
    pub pulled_with: Vec<String>,
}

impl ResolvedRef {
    /// Whether a pull with credentials of this fingerprint may reuse the stored image.
    pub fn allows(&self, fingerprint: &str) -> bool {
        self.pulled_with
            .iter()
            .any(|f| f == super::credentials::ANONYMOUS || f == fingerprint)
    }
}

impl ImageStore {
    pub fn open(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let store = Self { root: root.into() };
        // Several processes may share one store (two `host-agent run`s), so nothing here is
        // removed on open; garbage collection clears stale temporary files.
        for dir in ["blobs/sha256", "refs", "tmp"] {
            std::fs::create_dir_all(store.root.join(dir))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub(super) fn refs_dir(&self) -> PathBuf {
        self.root.join("refs")
    }

    pub(super) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.blobs_dir().join(hex))
    }

    fn ref_path(&self, reference: &str) -> PathBuf {
        self.refs_dir()
            .join(format!("{}.json", hex::encode(Sha256::digest(reference))))
    }

    /// The blob's bytes, if present and intact. A blob whose bytes no longer hash to its name
    /// (a disk fault, a hand edit) is removed and reported absent, so it is pulled again.
    pub fn read(&self, digest: &str) -> std::io::Result<Option<Arc<[u8]>>> {
        let Some(path) = self.blob_path(digest) else {
            return Ok(None);
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if sha256(&bytes) != digest {
            tracing::warn!(%digest, path = %path.display(), "stored blob is corrupt; removing it");
            std::fs::remove_file(&path)?;
            return Ok(None);
        }
        touch(&path);
        Ok(Some(bytes.into()))
    }

    pub fn contains(&self, digest: &str) -> bool {
        self.blob_path(digest).is_some_and(|p| p.is_file())
    }

    /// Stores verified bytes under their digest: temp file, fsync, rename.
    /// Stores `bytes` as blob `digest`, if they hash to it.
    #[cfg(test)]
    pub fn put(&self, digest: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut writer = self.writer()?;
        writer.write(bytes)?;
        writer.commit(digest)
    }

    /// A blob written as it arrives, to disk and never whole in memory: see [`BlobWriter`].
    pub fn writer(&self) -> std::io::Result<BlobWriter<'_>> {
        Ok(BlobWriter {
            store: self,
            tmp: tempfile::NamedTempFile::new_in(self.tmp_dir())?,
            hasher: Sha256::new(),
            len: 0,
        })
    }

    pub fn resolve(&self, reference: &str) -> Option<ResolvedRef> {
        let path = self.ref_path(reference);
        let text = std::fs::read(&path).ok()?;
        let resolved: ResolvedRef = serde_json::from_slice(&text).ok()?;
        if resolved.reference != reference || !self.contains(&resolved.layer_digest) {
            return None;
        }
        touch(&path);
        Some(resolved)
    }

    pub fn record(&self, resolved: &ResolvedRef) -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(self.tmp_dir())?;
        serde_json::to_writer(&mut tmp, resolved)?;
        tmp.persist(self.ref_path(&resolved.reference))
            .map_err(|e| e.error)?;
        Ok(())
    }
}

/// A blob on its way into the store: bytes go to a file in `tmp/`, hashed on the way, and the
/// file becomes the blob only if it hashes to the expected digest.
pub struct BlobWriter<'a> {
    store: &'a ImageStore,
    tmp: tempfile::NamedTempFile,
    hasher: Sha256,
    len: u64,
}

impl BlobWriter<'_> {
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.tmp.write_all(chunk)?;
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// `sha256:<hex>` of what was written.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    /// Makes the written bytes blob `digest`, if they hash to it; otherwise they are dropped.
    pub fn commit(self, digest: &str) -> std::io::Result<()> {
        let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
        let path = self
            .store
            .blob_path(digest)
            .ok_or_else(|| invalid(format!("unsupported digest {digest}")))?;
        let actual = self.digest();
        if actual != digest {
            return Err(invalid(format!("bytes hash to {actual}, not {digest}")));
        }
        self.tmp.as_file().sync_all()?;
        self.tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Marks a file as used now (its modification time is its last use).
pub(super) fn touch(path: &Path) {
    let _ = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_and_refs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let digest = sha256(b"component");
        assert!(store.read(&digest).unwrap().is_none());
        store.put(&digest, b"component").unwrap();
        assert_eq!(&*store.read(&digest).unwrap().unwrap(), b"component");

        let resolved = ResolvedRef {
            reference: "127.0.0.1:5000/a:1".into(),
            manifest_digest: sha256(b"manifest"),
            layer_digest: digest,
            pulled_with: vec!["anonymous".into()],
        };
        store.record(&resolved).unwrap();
        assert_eq!(store.resolve("127.0.0.1:5000/a:1"), Some(resolved));
        assert_eq!(store.resolve("127.0.0.1:5000/a:2"), None);
    }

    #[test]
    fn wrong_bytes_are_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let digest = sha256(b"expected");
        assert!(store.put(&digest, b"tampered").is_err());
        assert!(!store.contains(&digest));
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn corrupt_blob_on_disk_counts_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let digest = sha256(b"component");
        store.put(&digest, b"component").unwrap();
        std::fs::write(store.blob_path(&digest).unwrap(), b"c0mponent").unwrap();
        assert!(store.read(&digest).unwrap().is_none());
        assert!(!store.contains(&digest));
    }
}
