//! Turns a Workload into what the runtime runs, given each component's pulled image, and parses
//! limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use weft_api::{Component, Pool, Workload};
use weft_runtime::{
    ComponentSpec, InterfaceConfig, Limits, MountSpec, PoolSpec, ServiceSpec, VolumeSource,
    VolumeSpec, WorkloadSpec,
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

/// A component's bytes and where they came from.
#[derive(Clone, Debug)]
pub struct Image {
    pub wasm: Arc<[u8]>,
    pub image_id: Option<String>,
}

/// Checks everything but the images, so bad input is refused before anything is pulled.
pub fn check(workload: &Workload) -> Result<(), ConvertError> {
    let empty = Image {
        wasm: Arc::from(Vec::new()),
        image_id: None,
    };
    let images = workload
        .spec
        .all_components()
        .map(|c| (c.name.clone(), empty.clone()))
        .collect();
    to_spec(workload, &images).map(drop)
}

/// Converts `workload`, taking each component's bytes from `images` (by component name).
pub fn to_spec(
    workload: &Workload,
    images: &BTreeMap<String, Image>,
) -> Result<WorkloadSpec, ConvertError> {
    let spec = &workload.spec;
    let components = spec
        .components
        .iter()
        .map(|c| component(c, images))
        .collect::<Result<_, _>>()?;
    let service = spec
        .service
        .as_ref()
        .map(|s| {
            if s.component.pool.is_some() {
                return Err(ConvertError::Field {
                    component: s.component.name.clone(),
                    field: "pool",
                    reason: "the service runs once and is restarted, never pooled; pool is for components".into(),
                });
            }
            Ok::<_, ConvertError>(ServiceSpec {
                component: component(&s.component, images)?,
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
                (Some(empty_dir), None) => VolumeSource::EmptyDir {
                    size_limit: empty_dir
                        .size_limit
                        .as_deref()
                        .map(weft_api::parse_memory)
                        .transpose()
                        .map_err(|e| ConvertError::Volume {
                            index,
                            name: v.name.clone(),
                            reason: format!("emptyDir.sizeLimit: {e}"),
                        })?,
                },
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
        http_group: Some(workload.claimant()),
    })
}

/// A component's pool for the runtime. The CRD checks the same in a cluster; a local manifest
/// only meets this check.
fn pool(pool: &Pool, max_concurrency: u32) -> Result<PoolSpec, (&'static str, String)> {
    if pool.size > max_concurrency {
        return Err((
            "pool.size",
            format!(
                "{} is over limits.maxConcurrency {max_concurrency}: warm instances live within the memory the component reserves",
                pool.size
            ),
        ));
    }
    let idle_timeout = pool
        .idle_timeout()
        .map_err(|e| ("pool.idleTimeout", e.to_string()))?;
    Ok(PoolSpec {
        size: pool.size,
        max_invocations: pool.max_invocations(),
        idle_timeout,
        max_concurrency: pool.max_concurrency(),
    })
}

fn component(
    c: &Component,
    images: &BTreeMap<String, Image>,
) -> Result<ComponentSpec, ConvertError> {
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
        if let Some(n) = l.max_concurrency {
            limits.max_concurrency = n;
        }
        if let Some(bytes) = l
            .max_request_body_bytes()
            .map_err(|e| field("limits.maxRequestBody", e.to_string()))?
        {
            limits.max_request_body = bytes;
        }
    }
    let pool = c
        .pool
        .as_ref()
        .map(|p| pool(p, limits.max_concurrency).map_err(|(name, reason)| field(name, reason)))
        .transpose()?;
    let image = images.get(&c.name).ok_or_else(|| ConvertError::Image {
        component: c.name.clone(),
        image: c.image.clone(),
        reason: "was not pulled".into(),
    })?;
    Ok(ComponentSpec {
        name: c.name.clone(),
        wasm: image.wasm.clone(),
        image_id: image.image_id.clone(),
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
        pool,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(component_extra: &str, service: &str) -> Workload {
        serde_yaml::from_str(&format!(
            "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: w}}
spec:
  components:
    - name: c
      image: r/c:1
{component_extra}{service}"
        ))
        .unwrap()
    }

    #[test]
    fn pools_fit_the_reserved_concurrency_and_skip_the_service() {
        let images = [(
            "c".to_owned(),
            Image {
                wasm: Arc::from(Vec::new()),
                image_id: None,
            },
        )]
        .into();
        let spec = to_spec(
            &workload(
                "      pool: {size: 2, maxInvocations: 5, idleTimeout: 2s}\n",
                "",
            ),
            &images,
        )
        .unwrap();
        assert_eq!(
            spec.components[0].pool,
            Some(PoolSpec {
                size: 2,
                max_invocations: 5,
                idle_timeout: std::time::Duration::from_secs(2),
                max_concurrency: 1,
            })
        );

        let over = check(&workload(
            "      limits: {maxConcurrency: 2}\n      pool: {size: 3}\n",
            "",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            over.contains("pool.size") && over.contains("maxConcurrency 2"),
            "{over}"
        );
        let service = check(&workload(
            "",
            "  service: {name: s, image: r/s:1, pool: {size: 1}}\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(service.contains("never pooled"), "{service}");
    }
}
