//! What each namespace keeps on the host's disk through the filesystem backends, against a
//! quota per namespace. Without it one tenant could fill the agent's data volume, and the
//! kubelet would evict the agent's Pod, taking every tenant's data and Workloads with it.
//! Files are counted in 4 KiB blocks plus one block for the entry, so a million empty keys
//! are not free. A write that does not fit is an error value to that namespace only.

use std::collections::HashMap;
use std::path::Path;

use parking_lot::Mutex;

use crate::id_locks::{IdGuard, IdLocks};

/// The allocation unit counted per file.
const BLOCK: u64 = 4096;

/// Bytes a file of `len` bytes costs on disk, its entry included.
pub fn file_cost(len: u64) -> u64 {
    len.div_ceil(BLOCK) * BLOCK + BLOCK
}

/// Usage per namespace under one backend's directory (`<dir>/<namespace>/…`).
pub struct DiskQuota {
    per_namespace: u64,
    used: Mutex<HashMap<String, u64>>,
    /// One change per namespace at a time: the size a write replaces is the size it counts.
    writers: IdLocks,
}

/// A write that would take a namespace past its quota.
#[derive(Debug, thiserror::Error)]
#[error("namespace {namespace} would keep more than {quota} bytes in the {backend} backend")]
pub struct QuotaExceeded {
    /// The namespace that would go over.
    pub namespace: String,
    /// Its quota, in bytes.
    pub quota: u64,
    /// Where the write went: `filesystem` or `staging`.
    pub backend: &'static str,
}

impl DiskQuota {
    /// Default bytes per namespace (`--data-quota`).
    pub const DEFAULT_PER_NAMESPACE: u64 = 256 << 20;

    /// A quota of `per_namespace` bytes, with what `dir` already holds counted.
    pub fn new(dir: &Path, per_namespace: u64) -> Self {
        let used = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| Some((e.file_name().into_string().ok()?, usage(&e.path()))))
            .collect();
        Self {
            per_namespace,
            used: Mutex::new(used),
            writers: IdLocks::default(),
        }
    }

    /// A quota of `per_namespace` bytes with nothing used yet.
    pub fn empty(per_namespace: u64) -> Self {
        Self {
            per_namespace,
            used: Mutex::default(),
            writers: IdLocks::default(),
        }
    }

    /// Held while a namespace changes what it keeps (stat, count, write).
    pub(crate) async fn writer(&self, namespace: &str) -> IdGuard<'_> {
        self.writers.lock(namespace).await
    }

    /// Counts `grow` more bytes for `namespace`, less `shrink` it frees by the same write, if the
    /// result fits; in one critical section, so racing writers store at most the quota.
    pub fn change(
        &self,
        backend: &'static str,
        namespace: &str,
        grow: u64,
        shrink: u64,
    ) -> Result<(), QuotaExceeded> {
        let mut used = self.used.lock();
        let now = used.get(namespace).copied().unwrap_or(0);
        let after = now.saturating_add(grow).saturating_sub(shrink);
        if after > now && after > self.per_namespace {
            return Err(QuotaExceeded {
                namespace: namespace.to_owned(),
                quota: self.per_namespace,
                backend,
            });
        }
        used.insert(namespace.to_owned(), after);
        Ok(())
    }

    /// Returns `bytes` a namespace no longer keeps (a delete, or a write that failed).
    pub fn release(&self, namespace: &str, bytes: u64) {
        if let Some(used) = self.used.lock().get_mut(namespace) {
            *used = used.saturating_sub(bytes);
        }
    }

    #[cfg(test)]
    fn used(&self, namespace: &str) -> u64 {
        self.used.lock().get(namespace).copied().unwrap_or(0)
    }
}

/// What the files under `dir` cost, directories counted as entries.
pub fn usage(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => BLOCK + usage(&entry.path()),
            Ok(m) => file_cost(m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_and_what_is_already_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("team-a/bucket")).unwrap();
        std::fs::write(dir.path().join("team-a/bucket/k"), [0u8; 5000]).unwrap();
        let quota = DiskQuota::new(dir.path(), 6 * BLOCK);
        // The bucket directory (one block) and a two-block file with its entry.
        assert_eq!(quota.used("team-a"), 4 * BLOCK);
        assert!(quota.change("filesystem", "team-a", 2 * BLOCK, 0).is_ok());
        let refused = quota.change("filesystem", "team-a", 1, 0).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("namespace team-a would keep more than")
        );
        // Another namespace has its own; a write that shrinks is always let through.
        assert!(quota.change("filesystem", "team-b", 6 * BLOCK, 0).is_ok());
        assert!(
            quota
                .change("filesystem", "team-a", BLOCK, 2 * BLOCK)
                .is_ok()
        );
        quota.release("team-a", 100 * BLOCK);
        assert_eq!(quota.used("team-a"), 0);
        assert_eq!(file_cost(0), BLOCK);
        assert_eq!(file_cost(1), 2 * BLOCK);
    }
}
