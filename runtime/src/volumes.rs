//! Volumes. `emptyDir` is a directory under the host's data directory that lives as long as
//! the workload runs on this host (kept across updates, as a Pod's emptyDir outlives its
//! containers) and honours a `sizeLimit`; `hostPath` is a directory of the host, allowed only
//! under the prefixes the host operator lists and never overlapping the host's own state.
//! Components see only what they mount.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::error::{Error, Result};
use crate::spec::{MountSpec, VolumeSource, VolumeSpec};

/// What the host operator allows volumes to be.
#[derive(Clone, Debug)]
pub struct VolumePolicy {
    /// Where emptyDirs live (`<data dir>/emptydir/<workload>/<volume>`).
    pub data_dir: PathBuf,
    /// Prefixes a hostPath must lie under; `None` allows any (a local run of one's own
    /// manifest), an empty list none (the cluster default).
    pub host_path_prefixes: Option<Vec<PathBuf>>,
    /// The host's own directories (data, images, compiled components): never mountable.
    pub protected: Vec<PathBuf>,
}

impl VolumePolicy {
    fn empty_dirs(&self) -> PathBuf {
        self.data_dir.join("emptydir")
    }

    /// The directory of a workload's emptyDirs: its id with `/` made safe for one path part.
    pub(crate) fn empty_dir_root(&self, workload: &str) -> PathBuf {
        self.empty_dirs().join(workload.replace('/', "_"))
    }

    /// Removes every emptyDir left by an earlier run of the host.
    pub(crate) fn clean(&self) {
        let dir = self.empty_dirs();
        if let Err(err) = std::fs::remove_dir_all(&dir)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), %err, "cannot remove old emptyDirs");
        }
    }

    /// Removes a workload's emptyDirs, when it stops on this host.
    pub(crate) fn remove(&self, workload: &str) {
        let dir = self.empty_dir_root(workload);
        if let Err(err) = std::fs::remove_dir_all(&dir)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(workload, dir = %dir.display(), %err, "cannot remove emptyDirs");
        }
    }

    /// Why `path` may not be mounted, if it may not. Checked as written first (so the answer
    /// does not depend on what exists), then with symlinks resolved (so a link under an allowed
    /// prefix cannot lead out of it).
    fn host_path_refusal(&self, path: &Path) -> Option<String> {
        if let Some(reason) = self.refusal_of(path) {
            return Some(reason);
        }
        let real = match path.canonicalize() {
            Ok(real) => real,
            Err(err) => {
                return Some(format!(
                    "hostPath {} cannot be opened on this host: {err}",
                    path.display()
                ));
            }
        };
        if !real.is_dir() {
            return Some(format!(
                "hostPath {} is not a directory on this host",
                path.display()
            ));
        }
        self.refusal_of(&real)
            .map(|reason| format!("{reason} (it resolves to {})", real.display()))
    }

    fn refusal_of(&self, path: &Path) -> Option<String> {
        let shown = path.display();
        let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        if let Some(own) = self.protected.iter().find(|own| {
            path.starts_with(own) || own.starts_with(path) || {
                let own = real(own);
                path.starts_with(&own) || own.starts_with(path)
            }
        }) {
            return Some(format!(
                "hostPath {shown} overlaps the host's own directory {}",
                own.display()
            ));
        }
        let prefixes = self.host_path_prefixes.as_ref()?;
        if prefixes
            .iter()
            .any(|prefix| path.starts_with(prefix) || path.starts_with(real(prefix)))
        {
            return None;
        }
        let listed = if prefixes.is_empty() {
            "none".to_string()
        } else {
            prefixes
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some(format!(
            "hostPath {shown} is not under a prefix this host allows (--allow-host-path; allowed: {listed})"
        ))
    }
}

/// The host directories behind a workload's volumes.
#[derive(Debug, Default)]
pub(crate) struct Volumes {
    volumes: HashMap<String, Volume>,
}

#[derive(Debug)]
struct Volume {
    path: PathBuf,
    /// An emptyDir's `sizeLimit`: past it, components get the volume read-only.
    size_limit: Option<u64>,
}

impl Volumes {
    pub(crate) fn prepare(
        specs: &[VolumeSpec],
        policy: &VolumePolicy,
        workload: &str,
    ) -> Result<Self> {
        let mut volumes = Self::default();
        for spec in specs {
            let refuse = |reason: String| Error::InvalidVolume {
                volume: spec.name.clone(),
                reason,
            };
            let volume = match &spec.source {
                VolumeSource::EmptyDir { size_limit } => {
                    let path = policy.empty_dir_root(workload).join(&spec.name);
                    std::fs::create_dir_all(&path).map_err(|source| Error::Volume {
                        volume: spec.name.clone(),
                        action: "create emptyDir",
                        path: path.clone(),
                        source: source.into(),
                    })?;
                    Volume {
                        path,
                        size_limit: *size_limit,
                    }
                }
                VolumeSource::HostPath(path) => {
                    if let Some(reason) = policy.host_path_refusal(path) {
                        return Err(refuse(reason));
                    }
                    Volume {
                        path: path.clone(),
                        size_limit: None,
                    }
                }
            };
            volumes.volumes.insert(spec.name.clone(), volume);
        }
        Ok(volumes)
    }

    /// Checks that every mount names a declared volume, before anything starts.
    pub(crate) fn check_mounts(&self, component: &str, mounts: &[MountSpec]) -> Result<()> {
        for mount in mounts {
            if !self.volumes.contains_key(&mount.volume) {
                return Err(Error::InvalidVolume {
                    volume: mount.volume.clone(),
                    reason: format!(
                        "component {component} mounts it, but the workload declares no such volume"
                    ),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn preopen(&self, builder: &mut WasiCtxBuilder, mounts: &[MountSpec]) -> Result<()> {
        for mount in mounts {
            let Some(volume) = self.volumes.get(&mount.volume) else {
                continue;
            };
            let full = volume.size_limit.is_some_and(|limit| {
                let used = disk_usage(&volume.path);
                if used > limit {
                    tracing::warn!(
                        volume = mount.volume,
                        used,
                        limit,
                        "emptyDir is over its sizeLimit: mounted read-only until it shrinks"
                    );
                }
                used > limit
            });
            let perms = if mount.read_only || full {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder
                .preopened_dir(&volume.path, &mount.path, perms)
                .map_err(|e| Error::Volume {
                    volume: mount.volume.clone(),
                    action: "open",
                    path: volume.path.clone(),
                    source: e,
                })?;
        }
        Ok(())
    }
}

/// Bytes of the files under `dir` (symlinks not followed).
fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_only_under_allowed_prefixes_and_never_the_hosts_own() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("tenants");
        let mine = allowed.join("mine");
        let own = allowed.join("host/cache");
        let elsewhere = root.path().join("secrets");
        for dir in [&mine, &own, &elsewhere] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::os::unix::fs::symlink(&elsewhere, allowed.join("link")).unwrap();
        let policy = VolumePolicy {
            data_dir: root.path().join("data"),
            host_path_prefixes: Some(vec![allowed.clone()]),
            protected: vec![own.clone()],
        };
        assert_eq!(policy.host_path_refusal(&mine), None);
        let refused = |p: &Path| policy.host_path_refusal(p).unwrap();
        // The prefix itself holds the host's cache: mounting it would expose the cache.
        assert!(refused(&allowed).contains("overlaps the host's own directory"));
        assert!(refused(&allowed.join("host")).contains("overlaps"));
        assert!(refused(&elsewhere).contains("not under a prefix"));
        assert!(refused(&allowed.join("link")).contains("not under a prefix"));
        assert!(refused(&allowed.join("mine/../../secrets")).contains("resolves to"));
        assert!(refused(&own).contains("overlaps the host's own directory"));
        assert!(refused(&allowed.join("missing")).contains("cannot be opened"));
        let none = VolumePolicy {
            host_path_prefixes: Some(Vec::new()),
            ..policy.clone()
        };
        assert!(
            none.host_path_refusal(&mine)
                .unwrap()
                .contains("allowed: none")
        );
        let any = VolumePolicy {
            host_path_prefixes: None,
            ..policy
        };
        assert_eq!(any.host_path_refusal(&elsewhere), None);
        // The host's own state stays off limits even when any path is allowed.
        assert!(any.host_path_refusal(root.path()).is_some());
    }
}
