//! The in-memory backend: containers live as long as the host process, for development and
//! `host-agent run`. It is the host's own memory, so each namespace may hold at most a fixed
//! number of bytes in it (past it, `finish` answers an error value).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use tempfile::TempPath;

use super::backend::{BackendError, BlobBackend, ContainerName, ObjectInfo, Reader, now};

pub struct MemoryBlobs {
    per_namespace: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    containers: HashMap<ContainerName, Container>,
    /// Bytes of objects held, by namespace.
    used: HashMap<String, u64>,
}

struct Container {
    created_at: u64,
    objects: BTreeMap<String, (Bytes, u64)>,
}

impl MemoryBlobs {
    pub const DEFAULT_PER_NAMESPACE: u64 = 64 << 20;

    pub fn new(per_namespace: u64) -> Self {
        Self {
            per_namespace,
            state: Mutex::default(),
        }
    }
}

impl Default for MemoryBlobs {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PER_NAMESPACE)
    }
}

impl State {
    fn container(&mut self, name: &ContainerName) -> Result<&mut Container, BackendError> {
        self.containers
            .get_mut(name)
            .ok_or_else(|| BackendError::NoContainer(name.name.clone()))
    }

    fn release(&mut self, namespace: &str, bytes: u64) {
        if let Some(used) = self.used.get_mut(namespace) {
            *used = used.saturating_sub(bytes);
        }
    }
}

#[async_trait]
impl BlobBackend for MemoryBlobs {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn create_container(&self, container: &ContainerName) -> Result<(), BackendError> {
        let mut state = self.state.lock().expect("blob lock");
        if state.containers.contains_key(container) {
            return Err(BackendError::ContainerExists(container.name.clone()));
        }
        state.containers.insert(
            container.clone(),
            Container {
                created_at: now(),
                objects: BTreeMap::new(),
            },
        );
        Ok(())
    }

    async fn container_created(
        &self,
        container: &ContainerName,
    ) -> Result<Option<u64>, BackendError> {
        let state = self.state.lock().expect("blob lock");
        Ok(state.containers.get(container).map(|c| c.created_at))
    }

    async fn delete_container(&self, container: &ContainerName) -> Result<(), BackendError> {
        let mut state = self.state.lock().expect("blob lock");
        if let Some(gone) = state.containers.remove(container) {
            let bytes = gone.objects.values().map(|(b, _)| b.len() as u64).sum();
            state.release(&container.namespace, bytes);
        }
        Ok(())
    }

    async fn list_objects(&self, container: &ContainerName) -> Result<Vec<String>, BackendError> {
        let mut state = self.state.lock().expect("blob lock");
        Ok(state
            .container(container)?
            .objects
            .keys()
            .cloned()
            .collect())
    }

    async fn object_info(
        &self,
        container: &ContainerName,
        object: &str,
    ) -> Result<Option<ObjectInfo>, BackendError> {
        let mut state = self.state.lock().expect("blob lock");
        Ok(state
            .container(container)?
            .objects
            .get(object)
            .map(|(bytes, created_at)| ObjectInfo {
                size: bytes.len() as u64,
                created_at: *created_at,
            }))
    }

    async fn read(
        &self,
        container: &ContainerName,
        object: &str,
        start: u64,
        len: u64,
    ) -> Result<Reader, BackendError> {
        let mut state = self.state.lock().expect("blob lock");
        let (bytes, _) = state
            .container(container)?
            .objects
            .get(object)
            .ok_or_else(|| BackendError::no_object(container, object))?;
        // A cheap view of the shared bytes, not a copy.
        let range = bytes.slice(start as usize..(start + len) as usize);
        Ok(Box::new(std::io::Cursor::new(range)))
    }

    async fn write(
        &self,
        container: &ContainerName,
        object: &str,
        staged: TempPath,
        size: u64,
    ) -> Result<(), BackendError> {
        {
            let mut state = self.state.lock().expect("blob lock");
            let replaced = state
                .container(container)?
                .objects
                .get(object)
                .map_or(0, |(b, _)| b.len() as u64);
            let used = state.used.get(&container.namespace).copied().unwrap_or(0);
            if used - replaced + size > self.per_namespace {
                return Err(BackendError::Invalid(format!(
                    "namespace {} would hold more than {} bytes in the memory blobstore",
                    container.namespace, self.per_namespace
                )));
            }
        }
        let bytes = tokio::fs::read(&staged)
            .await
            .map_err(|e| BackendError::Unavailable {
                backend: "memory",
                reason: format!("reading the staged object: {e}"),
            })?;
        let mut state = self.state.lock().expect("blob lock");
        let entry = (Bytes::from(bytes), now());
        let replaced = state
            .container(container)?
            .objects
            .insert(object.to_string(), entry)
            .map_or(0, |(b, _)| b.len() as u64);
        state.release(&container.namespace, replaced);
        *state.used.entry(container.namespace.clone()).or_default() += size;
        Ok(())
    }

    async fn delete_object(
        &self,
        container: &ContainerName,
        object: &str,
    ) -> Result<(), BackendError> {
        let mut state = self.state.lock().expect("blob lock");
        let removed = state.container(container)?.objects.remove(object);
        if let Some((bytes, _)) = removed {
            state.release(&container.namespace, bytes.len() as u64);
        }
        Ok(())
    }
}
