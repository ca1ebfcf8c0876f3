//! The NATS backend: each container is one JetStream object store, named like key-value
//! buckets (`weft_<namespace>_<container>`, see [`jetstream_name`]), shared by every host on the
//! server. Objects are written from the staged file (the client queues at most a few chunks)
//! and read back by pulling a few chunks at a time, so neither way holds a whole object in
//! memory.

use std::collections::HashMap;

use async_nats::jetstream::object_store::{self, ObjectStore};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use tempfile::TempPath;
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

use super::backend::{BackendError, BlobBackend, ContainerName, ObjectInfo, Reader};
use crate::plugins::nats::{NatsConnection, jetstream_name};

/// The most one container holds on the server.
pub const MAX_CONTAINER_BYTES: i64 = 1 << 30;
/// Chunks (128 KiB each) fetched ahead of a reader.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Objects kept in JetStream object stores on a NATS server, shared by every host using it; the
/// `nats` backend.
pub struct NatsBlobs {
    nats: NatsConnection,
    /// Containers opened so far, by physical name.
    stores: Mutex<HashMap<String, ObjectStore>>,
}

impl NatsBlobs {
    /// A backend on the server behind `nats`; nothing connects until first use.
    pub fn new(nats: NatsConnection) -> Self {
        Self {
            nats,
            stores: Mutex::default(),
        }
    }

    fn unavailable(&self, err: impl std::fmt::Display) -> BackendError {
        BackendError::Unavailable {
            backend: "nats",
            reason: self.nats.describe(err),
        }
    }

    async fn jetstream(&self) -> Result<async_nats::jetstream::Context, BackendError> {
        self.nats.jetstream().await.map_err(|e| self.unavailable(e))
    }

    /// The container's object store, or `None` if there is none.
    async fn find(&self, container: &ContainerName) -> Result<Option<ObjectStore>, BackendError> {
        let name = jetstream_name(&container.namespace, &container.name);
        if let Some(store) = self.stores.lock().await.get(&name) {
            return Ok(Some(store.clone()));
        }
        let jetstream = self.jetstream().await?;
        // Looked up by its stream, so "absent" and "unreachable" stay apart.
        match jetstream.get_stream(format!("OBJ_{name}")).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("not found") => return Ok(None),
            Err(e) => return Err(self.unavailable(e)),
        }
        let store = jetstream
            .get_object_store(&name)
            .await
            .map_err(|e| self.unavailable(e))?;
        self.stores.lock().await.insert(name, store.clone());
        Ok(Some(store))
    }

    async fn store(&self, container: &ContainerName) -> Result<ObjectStore, BackendError> {
        self.find(container)
            .await?
            .ok_or_else(|| BackendError::NoContainer(container.name.clone()))
    }
}

#[async_trait]
impl BlobBackend for NatsBlobs {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn create_container(&self, container: &ContainerName) -> Result<(), BackendError> {
        if self.find(container).await?.is_some() {
            return Err(BackendError::ContainerExists(container.name.clone()));
        }
        let name = jetstream_name(&container.namespace, &container.name);
        let store = self
            .jetstream()
            .await?
            .create_object_store(object_store::Config {
                bucket: name.clone(),
                description: Some(format!("weft blobstore {}", container.physical())),
                max_bytes: MAX_CONTAINER_BYTES,
                ..Default::default()
            })
            .await
            .map_err(|e| self.unavailable(e))?;
        self.stores.lock().await.insert(name, store);
        Ok(())
    }

    async fn container_created(
        &self,
        container: &ContainerName,
    ) -> Result<Option<u64>, BackendError> {
        if self.find(container).await?.is_none() {
            return Ok(None);
        }
        let name = jetstream_name(&container.namespace, &container.name);
        let mut stream = self
            .jetstream()
            .await?
            .get_stream(format!("OBJ_{name}"))
            .await
            .map_err(|e| self.unavailable(e))?;
        let info = stream.info().await.map_err(|e| self.unavailable(e))?;
        Ok(Some(info.created.unix_timestamp().max(0) as u64))
    }

    async fn delete_container(&self, container: &ContainerName) -> Result<(), BackendError> {
        if self.find(container).await?.is_none() {
            return Ok(());
        }
        let name = jetstream_name(&container.namespace, &container.name);
        self.stores.lock().await.remove(&name);
        self.jetstream()
            .await?
            .delete_object_store(&name)
            .await
            .map_err(|e| self.unavailable(e))
    }

    async fn list_objects(&self, container: &ContainerName) -> Result<Vec<String>, BackendError> {
        let store = self.store(container).await?;
        let mut names: Vec<String> = store
            .list()
            .await
            .map_err(|e| self.unavailable(e))?
            .map_ok(|info| info.name)
            .try_collect()
            .await
            .map_err(|e| self.unavailable(e))?;
        names.sort();
        Ok(names)
    }

    async fn object_info(
        &self,
        container: &ContainerName,
        object: &str,
    ) -> Result<Option<ObjectInfo>, BackendError> {
        use object_store::InfoErrorKind;
        let store = self.store(container).await?;
        match store.info(object).await {
            Ok(info) if !info.deleted => Ok(Some(ObjectInfo {
                size: info.size as u64,
                created_at: info
                    .modified
                    .map_or(0, |t| t.unix_timestamp().max(0) as u64),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == InfoErrorKind::InvalidName => Err(BackendError::Invalid(
                format!("invalid object name {object:?}"),
            )),
            Err(e) => Err(self.unavailable(e)),
        }
    }

    async fn read(
        &self,
        container: &ContainerName,
        object: &str,
        start: u64,
        len: u64,
    ) -> Result<Reader, BackendError> {
        use async_nats::jetstream::consumer::{AckPolicy, pull};
        let store = self.store(container).await?;
        let info = match store.info(object).await {
            Ok(info) if !info.deleted => info,
            Ok(_) => return Err(BackendError::no_object(container, object)),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => {
                return Err(BackendError::no_object(container, object));
            }
            Err(e) => return Err(self.unavailable(e)),
        };
        // The chunks are pulled a few at a time as the guest reads, so however large the
        // object only those few sit in memory (the object store's own reader is pushed the
        // whole object as fast as the server sends it).
        let name = jetstream_name(&container.namespace, &container.name);
        let stream = self
            .jetstream()
            .await?
            .get_stream(format!("OBJ_{name}"))
            .await
            .map_err(|e| self.unavailable(e))?;
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: format!("$O.{name}.C.{}", info.nuid),
                ack_policy: AckPolicy::None,
                inactive_threshold: std::time::Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| self.unavailable(e))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(CHUNKS_IN_FLIGHT)
            .messages()
            .await
            .map_err(|e| self.unavailable(e))?;
        let chunks = messages.take(info.chunks).map(|message| {
            message
                .map(|m| m.payload.clone())
                .map_err(std::io::Error::other)
        });
        let mut reader = tokio_util::io::StreamReader::new(chunks);
        // Skip to the range, chunk by chunk.
        tokio::io::copy(&mut (&mut reader).take(start), &mut tokio::io::sink())
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(Box::new(reader.take(len)))
    }

    async fn write(
        &self,
        container: &ContainerName,
        object: &str,
        staged: TempPath,
        _size: u64,
    ) -> Result<(), BackendError> {
        let store = self.store(container).await?;
        let mut file = tokio::fs::File::open(&staged)
            .await
            .map_err(|e| self.unavailable(e))?;
        store
            .put(object, &mut file)
            .await
            .map(|_| ())
            .map_err(|e| self.unavailable(e))
    }

    async fn delete_object(
        &self,
        container: &ContainerName,
        object: &str,
    ) -> Result<(), BackendError> {
        let store = self.store(container).await?;
        match store.delete(object).await {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(self.unavailable(e)),
        }
    }
}
