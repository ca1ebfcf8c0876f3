//! Garbage collection of the image store and the compile cache: entries not used for longer than
//! a configured age, and not used by a running workload, are removed.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::ImageStore;
use super::store::ResolvedRef;

/// Temporary files older than this belong to a write that will never finish.
const STALE_TMP: Duration = Duration::from_secs(3600);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    pub blobs: usize,
    pub compiled: usize,
}

/// Removes blobs (and the references to them) and compiled components unused for `max_age`,
/// keeping every digest in `in_use`.
pub fn collect(
    store: &ImageStore,
    compiled: Option<&Path>,
    max_age: Duration,
    in_use: &HashSet<String>,
) -> std::io::Result<Collected> {
    let now = SystemTime::now();
    let expired = |path: &Path, age: Duration| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > age)
    };
    let mut collected = Collected::default();

    for entry in std::fs::read_dir(store.blobs_dir())? {
        let path = entry?.path();
        let digest = format!("sha256:{}", file_name(&path));
        if !in_use.contains(&digest) && expired(&path, max_age) {
            std::fs::remove_file(&path)?;
            collected.blobs += 1;
        }
    }
    // References whose blob is gone resolve to nothing; drop them too.
    for entry in std::fs::read_dir(store.refs_dir())? {
        let path = entry?.path();
        let dangling = std::fs::read(&path)
            .ok()
            .and_then(|t| serde_json::from_slice::<ResolvedRef>(&t).ok())
            .is_none_or(|r| !store.contains(&r.layer_digest));
        if dangling {
            std::fs::remove_file(&path)?;
        }
    }
    for entry in std::fs::read_dir(store.tmp_dir())? {
        let path = entry?.path();
        if expired(&path, STALE_TMP) {
            let _ = std::fs::remove_file(&path);
        }
    }

    // The compile cache: <dir>/<engine hash>/sha256-<hex>.cwasm.
    if let Some(dir) = compiled.filter(|d| d.is_dir()) {
        for engine_dir in std::fs::read_dir(dir)? {
            let engine_dir = engine_dir?.path();
            if !engine_dir.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&engine_dir)? {
                let path = entry?.path();
                let digest = file_name(&path)
                    .trim_end_matches(".cwasm")
                    .replacen('-', ":", 1);
                if !in_use.contains(&digest) && expired(&path, max_age) {
                    std::fs::remove_file(&path)?;
                    collected.compiled += 1;
                }
            }
        }
    }
    Ok(collected)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::store::sha256;

    fn age(path: &Path, by: Duration) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - by)
            .unwrap();
    }

    #[test]
    fn removes_only_old_unused_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path().join("images")).unwrap();
        let compiled = dir.path().join("compiled");
        std::fs::create_dir_all(compiled.join("e1")).unwrap();

        let (old, used, fresh) = (sha256(b"old"), sha256(b"used"), sha256(b"fresh"));
        for (digest, bytes) in [
            (&old, b"old" as &[u8]),
            (&used, b"used"),
            (&fresh, b"fresh"),
        ] {
            store.put(digest, bytes).unwrap();
            let cwasm = compiled
                .join("e1")
                .join(format!("{}.cwasm", digest.replace(':', "-")));
            std::fs::write(&cwasm, b"x").unwrap();
            if digest != &fresh {
                age(&cwasm, Duration::from_secs(7200));
            }
        }
        store
            .record(&ResolvedRef {
                reference: "r/a:1".into(),
                manifest_digest: sha256(b"m"),
                layer_digest: old.clone(),
                pulled_with: Vec::new(),
            })
            .unwrap();
        for digest in [&old, &used] {
            let hex = digest.trim_start_matches("sha256:");
            age(&store.blobs_dir().join(hex), Duration::from_secs(7200));
        }
        std::fs::write(store.tmp_dir().join("partial"), b"x").unwrap();
        age(&store.tmp_dir().join("partial"), STALE_TMP * 2);

        let in_use = HashSet::from([used.clone()]);
        let collected =
            collect(&store, Some(&compiled), Duration::from_secs(3600), &in_use).unwrap();
        assert_eq!(
            collected,
            Collected {
                blobs: 1,
                compiled: 1
            }
        );
        assert!(!store.contains(&old));
        assert!(store.contains(&used) && store.contains(&fresh));
        assert_eq!(store.resolve("r/a:1"), None);
        assert_eq!(std::fs::read_dir(store.refs_dir()).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }
}
