//! Turns a Workload manifest into what the runtime runs: reads each component's image (a path
//! relative to the manifest, in local mode) and parses limits.

use std::path::Path;
use std::sync::Arc;

use weft_api::{Component, Workload};
use weft_runtime::{
    ComponentSpec, InterfaceConfig, Limits, MountSpec, ServiceSpec, VolumeSource, VolumeSpec,
    WorkloadSpec,
};

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("component {component}: image {image}: {reason}")]
    Image {
        component: String,
        image: String,
        reason: String,
    },
    #[error("component {component}: {field}: {reason}")]
    Field {
        component: String,
        field: &'static str,
        reason: String,
    },
    #[error("spec.hostInterfaces[{index}]: {reason}")]
    Interface { index: usize, reason: String },
    #[error("spec.volumes[{index}] ({name}): {reason}")]
    Volume {
        index: usize,
        name: String,
        reason: String,
    },
}

/// Converts `workload`, reading local images relative to `base`.
pub fn to_spec(workload: &Workload, base: &Path) -> Result<WorkloadSpec, ConvertError> {
    let spec = &workload.spec;
    let components = spec
        .components
        .iter()
        .map(|c| component(c, base))
        .collect::<Result<_, _>>()?;
    let service = spec
        .service
        .as_ref()
        .map(|s| {
            Ok::<_, ConvertError>(ServiceSpec {
                component: component(&s.component, base)?,
                max_restarts: s.max_restarts,
            })
        })
        .transpose()?;
    let host_interfaces = spec
        .host_interfaces
        .iter()
        .enumerate()
        .map(|(index, i)| {
            Ok(InterfaceConfig {
                interface: i.to_wit().map_err(|e| ConvertError::Interface {
                    index,
                    reason: e.to_string(),
                })?,
                name: i.name.clone(),
                config: i.config.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    let volumes = spec
        .volumes
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let source = match (&v.empty_dir, &v.host_path) {
                (Some(_), None) => VolumeSource::EmptyDir,
                (None, Some(h)) => VolumeSource::HostPath(h.path.clone().into()),
                _ => {
                    return Err(ConvertError::Volume {
                        index,
                        name: v.name.clone(),
                        reason: "set exactly one of emptyDir or hostPath".into(),
                    });
                }
            };
            Ok(VolumeSpec {
                name: v.name.clone(),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(WorkloadSpec {
        namespace: workload
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: workload.metadata.name.clone().unwrap_or_default(),
        components,
        service,
        host_interfaces,
        volumes,
    })
}

fn component(c: &Component, base: &Path) -> Result<ComponentSpec, ConvertError> {
    let field = |field, reason: String| ConvertError::Field {
        component: c.name.clone(),
        field,
        reason,
    };
    let mut limits = Limits::default();
    if let Some(l) = &c.limits {
        if let Some(bytes) = l
            .memory_bytes()
            .map_err(|e| field("limits.memory", e.to_string()))?
        {
            limits.memory_bytes = bytes;
        }
        if let Some(timeout) = l
            .timeout_duration()
            .map_err(|e| field("limits.timeout", e.to_string()))?
        {
            limits.timeout = timeout;
        }
        limits.max_concurrency = l.max_concurrency;
    }
    Ok(ComponentSpec {
        name: c.name.clone(),
        wasm: read_image(c, base)?,
        config: c.config.clone(),
        env: c
            .env
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect(),
        mounts: c
            .volume_mounts
            .iter()
            .map(|m| MountSpec {
                volume: m.name.clone(),
                path: m.mount_path.clone(),
                read_only: m.read_only,
            })
            .collect(),
        limits,
        allowed_hosts: c.allowed_hosts.clone(),
    })
}

fn read_image(c: &Component, base: &Path) -> Result<Arc<[u8]>, ConvertError> {
    let err = |reason: String| ConvertError::Image {
        component: c.name.clone(),
        image: c.image.clone(),
        reason,
    };
    if c.image.trim().is_empty() {
        return Err(err("is empty".into()));
    }
    let path = base.join(&c.image);
    std::fs::read(&path)
        .map(Arc::from)
        .map_err(|e| err(format!("cannot read {}: {e}", path.display())))
}
