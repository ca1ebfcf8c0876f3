//! wasi:blobstore@0.2.0-draft (`blobstore`, `container`, `types`) over interchangeable backends
//! (`memory.rs`, `filesystem.rs`, `nats.rs`).
//!
//! The Workload's `wasi:blobstore` entry picks the backend (`config.backend`). Containers are
//! scoped to the Workload's namespace like key-value buckets. Bytes stream both ways: a value
//! being written goes to a staging file as the guest writes it and is committed by `finish`;
//! a value being read is handed to the guest as an `input-stream` over the backend's reader.
//! Backend failures reach the guest as error strings, never traps.

pub mod backend;
pub mod filesystem;
pub mod memory;
#[cfg(feature = "nats")]
pub mod nats;
pub mod staging;

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tracing::Instrument;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::pipe::AsyncReadStream;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use super::backend_set::BackendSet;
use super::iface;
use crate::component_info::ComponentInfo;
use crate::plugin::{ComponentBinding, HostPlugin, WitWorld};
use crate::spec::WorkloadSpec;
use crate::store::{Ctx, PluginView, StateFactory};
use backend::{BackendError, BlobBackend, ContainerName, Reader};
use staging::{Staged, StagedStream, StagingArea};

mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit/io", "../wit/blobstore"],
        world: "wasi:blobstore/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:blobstore/types.outgoing-value": super::OutgoingValue,
            "wasi:blobstore/types.incoming-value": super::IncomingValue,
            "wasi:blobstore/container.container": super::Container,
            "wasi:blobstore/container.stream-object-names": super::ObjectNames,
        },
    });
}

use bindings::wasi::blobstore::{blobstore, container, types};

/// The largest object a guest may write.
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;
/// The most `incoming-value-consume-sync` copies into the guest; larger values must stream.
pub const MAX_SYNC_BYTES: u64 = 16 << 20;

/// An open container: the guest's `container` resource.
pub struct Container {
    backend: Arc<dyn BlobBackend>,
    name: ContainerName,
}

/// A value being written (the guest's `outgoing-value`).
pub struct OutgoingValue {
    staged: Arc<Mutex<Option<Staged>>>,
    body_taken: bool,
    /// Where `finish` commits it, once `write-data` said.
    target: Option<(Arc<dyn BlobBackend>, ContainerName, String)>,
}

/// A value being read (the guest's `incoming-value`).
pub struct IncomingValue {
    reader: Reader,
    size: u64,
}

/// The guest's `stream-object-names`.
pub struct ObjectNames {
    names: std::collections::VecDeque<String>,
}

/// The plugin's state in one store.
struct BlobState {
    namespace: Arc<str>,
    backend: Arc<dyn BlobBackend>,
    staging: Arc<StagingArea>,
}

/// Serves `wasi:blobstore`, each Workload on the backend its entry picks.
pub struct BlobstorePlugin {
    backends: BackendSet<dyn BlobBackend>,
    staging: Arc<StagingArea>,
}

impl BlobstorePlugin {
    /// A plugin offering `backends`, `default` for entries that name none, staging values
    /// being written in `staging` (on the filesystem backend's filesystem).
    pub fn new(
        backends: Vec<Arc<dyn BlobBackend>>,
        default: &'static str,
        staging: StagingArea,
    ) -> Self {
        let backends = backends.into_iter().map(|b| (b.name(), b));
        Self {
            backends: BackendSet::new("wasi:blobstore", backends, default),
            staging: Arc::new(staging),
        }
    }

    fn backend_for(&self, workload: &WorkloadSpec) -> Result<Arc<dyn BlobBackend>, String> {
        let empty = BTreeMap::new();
        let config = workload
            .interface_config("wasi", "blobstore")
            .map_or(&empty, |i| &i.config);
        self.backends.pick(config)
    }
}

#[async_trait::async_trait]
impl HostPlugin for BlobstorePlugin {
    fn id(&self) -> &'static str {
        "wasi-blobstore"
    }

    fn world(&self) -> WitWorld {
        WitWorld {
            imports: vec![iface(
                "wasi:blobstore/blobstore,container,types@0.2.0-draft",
            )],
            exports: Vec::new(),
        }
    }

    fn backends(&self) -> Vec<&'static str> {
        self.backends.names()
    }

    async fn on_workload_bind(&self, workload: &WorkloadSpec) -> wasmtime::Result<()> {
        self.backend_for(workload).map_err(wasmtime::Error::msg)?;
        Ok(())
    }

    fn add_to_linker(
        &self,
        linker: &mut Linker<Ctx>,
        _component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        // wasi:io comes from the WASI plugin; only the blobstore's own interfaces here.
        blobstore::add_to_linker::<Ctx, Blobs>(linker, view)?;
        container::add_to_linker::<Ctx, Blobs>(linker, view)?;
        types::add_to_linker::<Ctx, Blobs>(linker, view)
    }

    fn on_component_bind(
        &self,
        binding: &ComponentBinding<'_>,
    ) -> wasmtime::Result<Option<StateFactory>> {
        let backend = self
            .backend_for(binding.workload)
            .map_err(wasmtime::Error::msg)?;
        let namespace: Arc<str> = binding.workload.namespace.as_str().into();
        let staging = self.staging.clone();
        Ok(Some(StateFactory::new(move || BlobState {
            namespace: namespace.clone(),
            backend: backend.clone(),
            staging: staging.clone(),
        })))
    }
}

struct Blobs;

fn view(ctx: &mut Ctx) -> PluginView<'_, BlobState> {
    ctx.plugin_view::<BlobState>()
}

impl HasData for Blobs {
    type Data<'a> = PluginView<'a, BlobState>;
}

type Answer<T> = wasmtime::Result<Result<T, String>>;

fn to_wit(err: BackendError) -> String {
    if let BackendError::Unavailable { .. } = err {
        tracing::warn!(%err, "blobstore backend failed");
    }
    err.to_string()
}

impl PluginView<'_, BlobState> {
    fn container_name(&self, name: &str) -> Result<ContainerName, BackendError> {
        ContainerName::new(&self.state.namespace, name)
    }

    /// The backend and name of an open container, cloned out of the table so no borrow is
    /// held across the backend's await, and the span of the operation `op` on it.
    fn open(
        &mut self,
        container: &Resource<Container>,
        op: &'static str,
    ) -> wasmtime::Result<(Arc<dyn BlobBackend>, ContainerName, tracing::Span)> {
        let container = self.table.get(container)?;
        let span = span(op, container.backend.as_ref(), &container.name.name);
        Ok((container.backend.clone(), container.name.clone(), span))
    }

    /// The span of the operation `op` on the Workload's backend.
    fn span(&self, op: &'static str, container: &str) -> tracing::Span {
        span(op, self.state.backend.as_ref(), container)
    }
}

/// The span of a blobstore operation: a child of the invocation, so a trace shows what a
/// request did to which container.
fn span(op: &'static str, backend: &dyn BlobBackend, container: &str) -> tracing::Span {
    tracing::info_span!(
        "wasi:blobstore",
        otel.name = %format_args!("wasi:blobstore {op}"),
        otel.kind = "client",
        container,
        backend = backend.name(),
    )
}

/// Reads `src` and stores it as `dest`, through a staging file counted for `namespace`.
async fn copy(
    backend: &Arc<dyn BlobBackend>,
    (staging, namespace): (&Arc<StagingArea>, &Arc<str>),
    (src, src_object): (&ContainerName, &str),
    (dest, dest_object): (&ContainerName, &str),
) -> Result<(), BackendError> {
    let size = backend
        .object_info(src, src_object)
        .await?
        .ok_or_else(|| BackendError::no_object(src, src_object))?
        .size;
    if backend.container_created(dest).await?.is_none() {
        return Err(BackendError::NoContainer(dest.name.clone()));
    }
    let mut reader = backend.read(src, src_object, 0, size).await?;
    let unavailable = |e: std::io::Error| BackendError::Unavailable {
        backend: "staging",
        reason: e.to_string(),
    };
    let _charge = staging
        .charge(namespace, size)
        .map_err(|e| BackendError::Invalid(e.to_string()))?;
    let (file, path) = staging.file().map_err(unavailable)?;
    let mut file = tokio::fs::File::from_std(file);
    let copied = tokio::io::copy(&mut reader, &mut file)
        .await
        .map_err(unavailable)?;
    file.sync_data().await.map_err(unavailable)?;
    backend.write(dest, dest_object, path, copied).await
}

impl blobstore::Host for PluginView<'_, BlobState> {
    async fn create_container(&mut self, name: String) -> Answer<Resource<Container>> {
        let name = match self.container_name(&name) {
            Ok(name) => name,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        let backend = self.state.backend.clone();
        let span = self.span("create-container", &name.name);
        if let Err(e) = backend.create_container(&name).instrument(span).await {
            return Ok(Err(to_wit(e)));
        }
        Ok(Ok(self.table.push(Container { backend, name })?))
    }

    async fn get_container(&mut self, name: String) -> Answer<Resource<Container>> {
        let name = match self.container_name(&name) {
            Ok(name) => name,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        let backend = self.state.backend.clone();
        let span = self.span("get-container", &name.name);
        match backend.container_created(&name).instrument(span).await {
            Ok(Some(_)) => Ok(Ok(self.table.push(Container { backend, name })?)),
            Ok(None) => Ok(Err(to_wit(BackendError::NoContainer(name.name)))),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }

    async fn delete_container(&mut self, name: String) -> Answer<()> {
        let backend = self.state.backend.clone();
        let span = self.span("delete-container", &name);
        let name = self.container_name(&name);
        let deleted = async { backend.delete_container(&name?).await };
        Ok(deleted.instrument(span).await.map_err(to_wit))
    }

    async fn container_exists(&mut self, name: String) -> Answer<bool> {
        let backend = self.state.backend.clone();
        let span = self.span("container-exists", &name);
        let name = self.container_name(&name);
        let exists = async { Ok(backend.container_created(&name?).await?.is_some()) };
        Ok(exists.instrument(span).await.map_err(to_wit))
    }

    async fn copy_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Answer<()> {
        let backend = self.state.backend.clone();
        let staging = self.state.staging.clone();
        let namespace = self.state.namespace.clone();
        let names = (
            self.container_name(&src.container),
            self.container_name(&dest.container),
        );
        let span = self.span("copy-object", &dest.container);
        let copied = async {
            let (from, to) = (names.0?, names.1?);
            copy(
                &backend,
                (&staging, &namespace),
                (&from, &src.object),
                (&to, &dest.object),
            )
            .await
        };
        Ok(copied.instrument(span).await.map_err(to_wit))
    }

    async fn move_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Answer<()> {
        let backend = self.state.backend.clone();
        let staging = self.state.staging.clone();
        let namespace = self.state.namespace.clone();
        let names = (
            self.container_name(&src.container),
            self.container_name(&dest.container),
        );
        let span = self.span("move-object", &dest.container);
        let moved = async {
            let (from, to) = (names.0?, names.1?);
            if (&from, &src.object) == (&to, &dest.object) {
                return Ok(());
            }
            copy(
                &backend,
                (&staging, &namespace),
                (&from, &src.object),
                (&to, &dest.object),
            )
            .await?;
            backend.delete_object(&from, &src.object).await
        };
        Ok(moved.instrument(span).await.map_err(to_wit))
    }
}

impl container::Host for PluginView<'_, BlobState> {}

impl container::HostContainer for PluginView<'_, BlobState> {
    async fn name(&mut self, container: Resource<Container>) -> Answer<String> {
        Ok(Ok(self.table.get(&container)?.name.name.clone()))
    }

    async fn info(&mut self, container: Resource<Container>) -> Answer<types::ContainerMetadata> {
        let (backend, name, span) = self.open(&container, "info")?;
        Ok(
            match backend.container_created(&name).instrument(span).await {
                Ok(Some(created_at)) => Ok(types::ContainerMetadata {
                    name: name.name,
                    created_at,
                }),
                Ok(None) => Err(to_wit(BackendError::NoContainer(name.name))),
                Err(e) => Err(to_wit(e)),
            },
        )
    }

    async fn get_data(
        &mut self,
        container: Resource<Container>,
        object: String,
        start: u64,
        end: u64,
    ) -> Answer<Resource<IncomingValue>> {
        let (backend, name, span) = self.open(&container, "get-data")?;
        let opened = async {
            let size = backend
                .object_info(&name, &object)
                .await?
                .ok_or_else(|| BackendError::no_object(&name, &object))?
                .size;
            // Inclusive, and clamped to the object as HTTP ranges are.
            let len = match size {
                0 if start == 0 => 0,
                _ if start > end || start >= size => {
                    return Err(BackendError::Invalid(format!(
                        "range {start}-{end} is outside object {object} of {size} bytes"
                    )));
                }
                _ => end.min(size - 1) - start + 1,
            };
            let reader = backend.read(&name, &object, start, len).await?;
            Ok(IncomingValue { reader, size: len })
        };
        match opened.instrument(span).await {
            Ok(value) => Ok(Ok(self.table.push(value)?)),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }

    async fn write_data(
        &mut self,
        container: Resource<Container>,
        object: String,
        data: Resource<OutgoingValue>,
    ) -> Answer<()> {
        // Nothing reaches the backend before `finish`, which is the write's span.
        let open = self.table.get(&container)?;
        let (backend, name) = (open.backend.clone(), open.name.clone());
        if object.is_empty() {
            return Ok(Err("object names are not empty".into()));
        }
        self.table.get_mut(&data)?.target = Some((backend, name, object));
        Ok(Ok(()))
    }

    async fn list_objects(
        &mut self,
        container: Resource<Container>,
    ) -> Answer<Resource<ObjectNames>> {
        let (backend, name, span) = self.open(&container, "list-objects")?;
        match backend.list_objects(&name).instrument(span).await {
            Ok(names) => Ok(Ok(self.table.push(ObjectNames {
                names: names.into(),
            })?)),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }

    async fn delete_object(
        &mut self,
        container: Resource<Container>,
        object: String,
    ) -> Answer<()> {
        let (backend, name, span) = self.open(&container, "delete-object")?;
        Ok(backend
            .delete_object(&name, &object)
            .instrument(span)
            .await
            .map_err(to_wit))
    }

    async fn delete_objects(
        &mut self,
        container: Resource<Container>,
        objects: Vec<String>,
    ) -> Answer<()> {
        let (backend, name, span) = self.open(&container, "delete-objects")?;
        let deleted = async {
            for object in objects {
                backend.delete_object(&name, &object).await?;
            }
            Ok(())
        };
        Ok(deleted.instrument(span).await.map_err(to_wit))
    }

    async fn has_object(&mut self, container: Resource<Container>, object: String) -> Answer<bool> {
        let (backend, name, span) = self.open(&container, "has-object")?;
        Ok(backend
            .object_info(&name, &object)
            .instrument(span)
            .await
            .map(|info| info.is_some())
            .map_err(to_wit))
    }

    async fn object_info(
        &mut self,
        container: Resource<Container>,
        object: String,
    ) -> Answer<types::ObjectMetadata> {
        let (backend, name, span) = self.open(&container, "object-info")?;
        Ok(
            match backend.object_info(&name, &object).instrument(span).await {
                Ok(Some(info)) => Ok(types::ObjectMetadata {
                    name: object,
                    container: name.name,
                    created_at: info.created_at,
                    size: info.size,
                }),
                Ok(None) => Err(to_wit(BackendError::no_object(&name, &object))),
                Err(e) => Err(to_wit(e)),
            },
        )
    }

    async fn clear(&mut self, container: Resource<Container>) -> Answer<()> {
        let (backend, name, span) = self.open(&container, "clear")?;
        let cleared = async {
            for object in backend.list_objects(&name).await? {
                backend.delete_object(&name, &object).await?;
            }
            Ok(())
        };
        Ok(cleared.instrument(span).await.map_err(to_wit))
    }

    async fn drop(&mut self, container: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(container)?;
        Ok(())
    }
}

impl container::HostStreamObjectNames for PluginView<'_, BlobState> {
    async fn read_stream_object_names(
        &mut self,
        names: Resource<ObjectNames>,
        len: u64,
    ) -> Answer<(Vec<String>, bool)> {
        let names = &mut self.table.get_mut(&names)?.names;
        let n = (len as usize).min(names.len());
        let read: Vec<String> = names.drain(..n).collect();
        Ok(Ok((read, names.is_empty())))
    }

    async fn skip_stream_object_names(
        &mut self,
        names: Resource<ObjectNames>,
        num: u64,
    ) -> Answer<(u64, bool)> {
        let names = &mut self.table.get_mut(&names)?.names;
        let n = (num as usize).min(names.len());
        names.drain(..n);
        Ok(Ok((n as u64, names.is_empty())))
    }

    async fn drop(&mut self, names: Resource<ObjectNames>) -> wasmtime::Result<()> {
        self.table.delete(names)?;
        Ok(())
    }
}

impl types::Host for PluginView<'_, BlobState> {}

impl types::HostOutgoingValue for PluginView<'_, BlobState> {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        let staged = (self.state.staging)
            .create(&self.state.namespace, MAX_OBJECT_BYTES)
            .map_err(|e| wasmtime::format_err!("blobstore staging: {e}"))?;
        Ok(self.table.push(OutgoingValue {
            staged: Arc::new(Mutex::new(Some(staged))),
            body_taken: false,
            target: None,
        })?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        value: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let value = self.table.get_mut(&value)?;
        if std::mem::replace(&mut value.body_taken, true) {
            return Ok(Err(()));
        }
        let stream: DynOutputStream = Box::new(StagedStream(value.staged.clone()));
        Ok(Ok(self.table.push(stream)?))
    }

    async fn finish(&mut self, value: Resource<OutgoingValue>) -> Answer<()> {
        let value = self.table.delete(value)?;
        let Some((backend, container, object)) = value.target else {
            return Ok(Err("finish before write-data named the object".into()));
        };
        let staged = value.staged.lock().take();
        let Some(staged) = staged else {
            return Ok(Err("the value was already finished".into()));
        };
        let (path, size, _charge) = match staged.finish() {
            Ok(done) => done,
            Err(e) => return Ok(Err(format!("blobstore staging: {e}"))),
        };
        let span = span("write-data", backend.as_ref(), &container.name);
        Ok(backend
            .write(&container, &object, path, size)
            .instrument(span)
            .await
            .map_err(to_wit))
    }

    async fn drop(&mut self, value: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        // Unfinished: the staging file goes with it, nothing is written.
        self.table.delete(value)?;
        Ok(())
    }
}

impl types::HostIncomingValue for PluginView<'_, BlobState> {
    async fn incoming_value_consume_sync(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Answer<Vec<u8>> {
        let mut value = self.table.delete(value)?;
        if value.size > MAX_SYNC_BYTES {
            return Ok(Err(format!(
                "the value is {} bytes, over the {MAX_SYNC_BYTES} incoming-value-consume-sync copies; use incoming-value-consume-async",
                value.size
            )));
        }
        let mut bytes = Vec::with_capacity(value.size as usize);
        Ok(value
            .reader
            .read_to_end(&mut bytes)
            .await
            .map(|_| bytes)
            .map_err(|e| format!("reading the value: {e}")))
    }

    async fn incoming_value_consume_async(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Answer<Resource<DynInputStream>> {
        let value = self.table.delete(value)?;
        let stream: DynInputStream = Box::new(AsyncReadStream::new(value.reader));
        Ok(Ok(self.table.push(stream)?))
    }

    async fn size(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&value)?.size)
    }

    async fn drop(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}
