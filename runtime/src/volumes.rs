//! Volumes: `emptyDir` is a fresh directory owned by the workload and removed with it;
//! `hostPath` is a directory of the host. Components see only what they mount.

use std::collections::HashMap;
use std::path::PathBuf;

use tempfile::TempDir;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::error::{Error, Result};
use crate::spec::{MountSpec, VolumeSource, VolumeSpec};

/// The host directories behind a workload's volumes.
#[derive(Debug, Default)]
pub(crate) struct Volumes {
    paths: HashMap<String, PathBuf>,
    // Held so emptyDirs are deleted when the workload goes.
    _empty_dirs: Vec<TempDir>,
}

impl Volumes {
    pub(crate) fn prepare(specs: &[VolumeSpec]) -> Result<Self> {
        let mut volumes = Self::default();
        for spec in specs {
            let err = |reason: String| Error::Volume {
                volume: spec.name.clone(),
                reason,
            };
            let path = match &spec.source {
                VolumeSource::EmptyDir => {
                    let dir = tempfile::Builder::new()
                        .prefix("weft-emptydir-")
                        .tempdir()
                        .map_err(|e| err(format!("cannot create emptyDir: {e}")))?;
                    let path = dir.path().to_path_buf();
                    volumes._empty_dirs.push(dir);
                    path
                }
                VolumeSource::HostPath(path) => {
                    if !path.is_dir() {
                        return Err(err(format!(
                            "hostPath {} is not a directory on this host",
                            path.display()
                        )));
                    }
                    path.clone()
                }
            };
            volumes.paths.insert(spec.name.clone(), path);
        }
        Ok(volumes)
    }

    /// Checks that every mount names a declared volume, before anything starts.
    pub(crate) fn check_mounts(&self, component: &str, mounts: &[MountSpec]) -> Result<()> {
        for mount in mounts {
            if !self.paths.contains_key(&mount.volume) {
                return Err(Error::Volume {
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
            let Some(path) = self.paths.get(&mount.volume) else {
                continue;
            };
            let perms = if mount.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder
                .preopened_dir(path, &mount.path, perms)
                .map_err(|e| Error::Volume {
                    volume: mount.volume.clone(),
                    reason: format!("cannot open {}: {e:#}", path.display()),
                })?;
        }
        Ok(())
    }
}
