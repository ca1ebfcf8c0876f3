//! The in-memory backend: containers live as long as the host process, for development and
//! `host-agent run`. It is the host's own memory, so each namespace may hold at most a fixed
//! number of bytes in it (past it, `finish` answers an error value).

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bytes::Bytes;
use tempfile::TempPath;

use super::backend::{BackendError, BlobBackend, ContainerName, ObjectInfo, Reader, now};

/// Objects kept in the host's memory, lost when it exits; the `memory` backend every host has.
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
    /// The per-namespace limit [`Default`] uses: 64 MiB.
    pub const DEFAULT_PER_NAMESPACE: u64 = 64 << 20;

    /// A backend holding at most `per_namespace` bytes of containers and objects for each
    /// namespace.
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

/// What the host keeps for an object besides its name and bytes, and for a container besides its
/// name: counted against the quota, so empty objects and containers are not free.
const OBJECT_BYTES: u64 = 64;
const CONTAINER_BYTES: u64 = 128;

fn object_cost(name: &str, size: u64) -> u64 {
    OBJECT_BYTES + name.len() as u64 + size
}

fn container_cost(container: &ContainerName) -> u64 {
    CONTAINER_BYTES + container.physical().len() as u64
}

impl State {
    fn container(&mut self, name: &ContainerName) -> Result<&mut Container, BackendError> {
        self.containers
            .get_mut(name)
            .ok_or_else(|| BackendError::NoContainer(name.name.clone()))
    }

    /// Whether `object` of `size` bytes fits the namespace's quota in place of what it replaces
    /// (whose cost is returned).
    fn fits(
        &mut self,
        container: &ContainerName,
        object: &str,
        size: u64,
        quota: u64,
    ) -> Result<u64, BackendError> {
        let replaced = self
            .container(container)?
            .objects
            .get(object)
            .map_or(0, |(b, _)| object_cost(object, b.len() as u64));
        let used = self.used.get(&container.namespace).copied().unwrap_or(0);
        if used
            .saturating_sub(replaced)
            .saturating_add(object_cost(object, size))
            > quota
        {
            return Err(BackendError::Invalid(format!(
                "namespace {} would hold more than {quota} bytes in the memory blobstore",
                container.namespace
            )));
        }
        Ok(replaced)
    }

    fn hold(&mut self, namespace: &str, bytes: u64) {
        *self.used.entry(namespace.to_string()).or_default() += bytes;
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
        let mut state = self.state.lock();
        if state.containers.contains_key(container) {
            return Err(BackendError::ContainerExists(container.name.clone()));
        }
        let cost = container_cost(container);
        let used = state.used.get(&container.namespace).copied().unwrap_or(0);
        if used.saturating_add(cost) > self.per_namespace {
            return Err(BackendError::Invalid(format!(
                "namespace {} would hold more than {} bytes in the memory blobstore",
                container.namespace, self.per_namespace
            )));
        }
        state.hold(&container.namespace, cost);
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
        let state = self.state.lock();
        Ok(state.containers.get(container).map(|c| c.created_at))
    }

    async fn delete_container(&self, container: &ContainerName) -> Result<(), BackendError> {
        let mut state = self.state.lock();
        if let Some(gone) = state.containers.remove(container) {
            let objects: u64 = gone
                .objects
                .iter()
                .map(|(name, (b, _))| object_cost(name, b.len() as u64))
                .sum();
            state.release(&container.namespace, objects + container_cost(container));
        }
        Ok(())
    }

    async fn list_objects(&self, container: &ContainerName) -> Result<Vec<String>, BackendError> {
        let mut state = self.state.lock();
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
        let mut state = self.state.lock();
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
        let mut state = self.state.lock();
        let (bytes, _) = state
            .container(container)?
            .objects
            .get(object)
            .ok_or_else(|| BackendError::no_object(container, object))?;
        // The caller sized the range from an earlier look at the object, which another
        // invocation may have replaced since: check it again here, never slice past the end.
        let range = usize::try_from(start)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(start, len)| Some(start..start.checked_add(len)?))
            .filter(|range| range.end <= bytes.len())
            .ok_or_else(|| {
                BackendError::Invalid(format!(
                    "object {object} changed while it was being read (now {} bytes)",
                    bytes.len()
                ))
            })?;
        // A cheap view of the shared bytes, not a copy.
        Ok(Box::new(std::io::Cursor::new(bytes.slice(range))))
    }

    async fn write(
        &self,
        container: &ContainerName,
        object: &str,
        staged: TempPath,
        size: u64,
    ) -> Result<(), BackendError> {
        // Checked before the object is read into memory, and again where it is stored: two
        // writers of one namespace cannot both pass the check and then both store.
        self.state
            .lock()
            .fits(container, object, size, self.per_namespace)?;
        let bytes = tokio::fs::read(&staged)
            .await
            .map_err(|e| BackendError::Unavailable {
                backend: "memory",
                reason: format!("reading the staged object: {e}"),
            })?;
        let size = bytes.len() as u64;
        let mut state = self.state.lock();
        let replaced = state.fits(container, object, size, self.per_namespace)?;
        let entry = (Bytes::from(bytes), now());
        state
            .container(container)?
            .objects
            .insert(object.to_string(), entry);
        state.release(&container.namespace, replaced);
        state.hold(&container.namespace, object_cost(object, size));
        Ok(())
    }

    async fn delete_object(
        &self,
        container: &ContainerName,
        object: &str,
    ) -> Result<(), BackendError> {
        let mut state = self.state.lock();
        let removed = state.container(container)?.objects.remove(object);
        if let Some((bytes, _)) = removed {
            state.release(
                &container.namespace,
                object_cost(object, bytes.len() as u64),
            );
        }
        Ok(())
    }
}
