//! wasi:keyvalue@0.2.0-draft (`store`, `atomics`, `batch`) over interchangeable backends, one
//! file each (`memory.rs`, `filesystem.rs`, `redis.rs`), the way wash-runtime lays out its keyvalue plugin.
//!
//! A Workload picks a backend per `hostInterfaces` entry with `config.backend` (the host's
//! default otherwise). `open(identifier)` opens the bucket of the entry *named* `identifier`
//! (its `config.bucket`, else the identifier), or else bucket `identifier` of the unnamed entry.
//! Buckets are scoped to the Workload's namespace, so two namespaces opening the same name
//! never share data. Backend failures reach the guest as the WIT's error values, never traps.

pub mod backend;
pub mod filesystem;
pub mod memory;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "redis")]
pub mod redis;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tracing::Instrument;
use wasmtime::component::{HasData, Linker, Resource};

use super::backend_set::BackendSet;
use super::iface;
use crate::component_info::ComponentInfo;
use crate::plugin::{ComponentBinding, HostPlugin, WitWorld};
use crate::spec::WorkloadSpec;
use crate::store::{Ctx, PluginView, StateFactory};
use backend::{BackendError, KeyValueBackend};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/keyvalue",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: { "wasi:keyvalue/store.bucket": super::Bucket },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// A bucket as a backend stores it: the Workload's namespace and the bucket's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BucketName {
    /// The namespace of the Workload using the bucket.
    pub namespace: String,
    /// The bucket's name as the guest or manifest gave it, already checked (see
    /// [`BucketName::new`]).
    pub bucket: String,
}

impl BucketName {
    /// Checks a bucket name a guest (or a manifest) gave (see [`super::check_resource_name`]).
    pub fn new(namespace: &str, bucket: &str) -> Result<Self, BackendError> {
        super::check_resource_name("bucket", bucket).map_err(BackendError::Invalid)?;
        Ok(Self {
            namespace: namespace.to_string(),
            bucket: bucket.to_string(),
        })
    }

    /// `<namespace>/<bucket>`: the name in backends with one flat space of buckets.
    pub fn physical(&self) -> String {
        format!("{}/{}", self.namespace, self.bucket)
    }
}

/// An open bucket: the guest's `bucket` resource.
pub struct Bucket {
    backend: Arc<dyn KeyValueBackend>,
    name: BucketName,
}

/// What a `hostInterfaces` entry chose: its backend and an optional fixed bucket.
#[derive(Clone)]
struct Entry {
    backend: Arc<dyn KeyValueBackend>,
    bucket: Option<String>,
}

/// The plugin's state in one store.
struct KeyValueState {
    namespace: Arc<str>,
    unnamed: Option<Entry>,
    named: Arc<HashMap<String, Entry>>,
}

/// Serves `wasi:keyvalue`, each `hostInterfaces` entry on the backend it picks.
pub struct KeyValuePlugin {
    backends: BackendSet<dyn KeyValueBackend>,
}

impl KeyValuePlugin {
    /// A plugin offering `backends`, `default` for entries that name none.
    pub fn new(backends: Vec<Arc<dyn KeyValueBackend>>, default: &'static str) -> Self {
        let backends = backends.into_iter().map(|b| (b.name(), b));
        Self {
            backends: BackendSet::new("wasi:keyvalue", backends, default),
        }
    }
}

#[async_trait::async_trait]
impl HostPlugin for KeyValuePlugin {
    fn id(&self) -> &'static str {
        "wasi-keyvalue"
    }

    fn world(&self) -> WitWorld {
        WitWorld {
            imports: vec![iface("wasi:keyvalue/store,atomics,batch@0.2.0-draft")],
            exports: Vec::new(),
        }
    }

    fn backends(&self) -> Vec<&'static str> {
        self.backends.names()
    }

    async fn on_workload_bind(&self, workload: &WorkloadSpec) -> wasmtime::Result<()> {
        for entry in workload
            .host_interfaces
            .iter()
            .filter(|i| i.interface.namespace == "wasi" && i.interface.package == "keyvalue")
        {
            self.backends
                .pick(&entry.config)
                .map_err(wasmtime::Error::msg)?;
            if let Some(bucket) = entry.config.get("bucket") {
                BucketName::new(&workload.namespace, bucket)?;
            }
        }
        Ok(())
    }

    fn add_to_linker(
        &self,
        linker: &mut Linker<Ctx>,
        _component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        bindings::Imports::add_to_linker::<Ctx, KeyValue>(linker, |ctx| {
            ctx.plugin_view::<KeyValueState>()
        })
    }

    fn on_component_bind(
        &self,
        binding: &ComponentBinding<'_>,
    ) -> wasmtime::Result<Option<StateFactory>> {
        let entry = |config: &BTreeMap<String, String>| -> wasmtime::Result<Entry> {
            Ok(Entry {
                backend: self.backends.pick(config).map_err(wasmtime::Error::msg)?,
                bucket: config.get("bucket").cloned(),
            })
        };
        let unnamed = match binding.interface(None) {
            Some(i) => Some(entry(&i.config)?),
            None => Some(entry(&BTreeMap::new())?),
        };
        let named: HashMap<String, Entry> = binding
            .interfaces
            .iter()
            .filter_map(|i| Some((i.name.clone()?, &i.config)))
            .map(|(name, config)| Ok((name, entry(config)?)))
            .collect::<wasmtime::Result<_>>()?;
        let namespace: Arc<str> = binding.workload.namespace.as_str().into();
        let named = Arc::new(named);
        Ok(Some(StateFactory::new(move || KeyValueState {
            namespace: namespace.clone(),
            unnamed: unnamed.clone(),
            named: named.clone(),
        })))
    }
}

struct KeyValue;

impl HasData for KeyValue {
    type Data<'a> = PluginView<'a, KeyValueState>;
}

fn to_wit(err: BackendError) -> store::Error {
    match err {
        BackendError::Invalid(reason) => store::Error::Other(reason),
        unavailable @ BackendError::Unavailable { .. } => {
            tracing::warn!(err = %unavailable, "keyvalue backend failed");
            store::Error::Other(unavailable.to_string())
        }
    }
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

/// The backend and name of an open bucket, cloned out of the table so no borrow is held
/// across the backend's await, and the span of the operation `op` on it: a child of the
/// invocation, so a trace shows what a request did to which bucket.
fn bucket_of(
    view: &mut PluginView<'_, KeyValueState>,
    bucket: &Resource<Bucket>,
    op: &'static str,
) -> wasmtime::Result<(Arc<dyn KeyValueBackend>, BucketName, tracing::Span)> {
    let bucket = view.table.get(bucket)?;
    let span = tracing::info_span!(
        "wasi:keyvalue",
        otel.name = %format_args!("wasi:keyvalue {op}"),
        otel.kind = "client",
        bucket = bucket.name.bucket,
        backend = bucket.backend.name(),
    );
    Ok((bucket.backend.clone(), bucket.name.clone(), span))
}

impl store::Host for PluginView<'_, KeyValueState> {
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        let (entry, bucket) = match self.state.named.get(&identifier) {
            Some(entry) => (entry, entry.bucket.clone().unwrap_or(identifier)),
            None => match &self.state.unnamed {
                Some(entry) => (entry, identifier),
                None => return Ok(Err(store::Error::NoSuchStore)),
            },
        };
        let name = match BucketName::new(&self.state.namespace, &bucket) {
            Ok(name) => name,
            Err(err) => return Ok(Err(to_wit(err))),
        };
        let backend = entry.backend.clone();
        Ok(Ok(self.table.push(Bucket { backend, name })?))
    }
}

impl store::HostBucket for PluginView<'_, KeyValueState> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        let (backend, name, span) = bucket_of(self, &bucket, "get")?;
        Ok(backend
            .get(&name, &key)
            .instrument(span)
            .await
            .map_err(to_wit))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let (backend, name, span) = bucket_of(self, &bucket, "set")?;
        Ok(backend
            .set(&name, &key, value)
            .instrument(span)
            .await
            .map_err(to_wit))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<()> {
        let (backend, name, span) = bucket_of(self, &bucket, "delete")?;
        Ok(backend
            .delete(&name, &key)
            .instrument(span)
            .await
            .map_err(to_wit))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<bool> {
        let (backend, name, span) = bucket_of(self, &bucket, "exists")?;
        Ok(backend
            .exists(&name, &key)
            .instrument(span)
            .await
            .map_err(to_wit))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Answer<store::KeyResponse> {
        let (backend, name, span) = bucket_of(self, &bucket, "list-keys")?;
        Ok(backend
            .list_keys(&name, cursor)
            .instrument(span)
            .await
            .map(|(keys, cursor)| store::KeyResponse { keys, cursor })
            .map_err(to_wit))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for PluginView<'_, KeyValueState> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Answer<u64> {
        let (backend, name, span) = bucket_of(self, &bucket, "increment")?;
        Ok(backend
            .increment(&name, &key, delta)
            .instrument(span)
            .await
            .map_err(to_wit))
    }
}

impl batch::Host for PluginView<'_, KeyValueState> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<Option<(String, Vec<u8>)>>> {
        let (backend, name, span) = bucket_of(self, &bucket, "get-many")?;
        let values = async {
            let mut values = Vec::with_capacity(keys.len());
            // In the order asked for.
            for key in keys {
                let value = backend.get(&name, &key).await?;
                values.push(value.map(|v| (key, v)));
            }
            Ok(values)
        };
        Ok(values.instrument(span).await.map_err(to_wit))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        let (backend, name, span) = bucket_of(self, &bucket, "set-many")?;
        let stored = async {
            for (key, value) in key_values {
                backend.set(&name, &key, value).await?;
            }
            Ok(())
        };
        Ok(stored.instrument(span).await.map_err(to_wit))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        let (backend, name, span) = bucket_of(self, &bucket, "delete-many")?;
        let deleted = async {
            for key in keys {
                backend.delete(&name, &key).await?;
            }
            Ok(())
        };
        Ok(deleted.instrument(span).await.map_err(to_wit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_are_checked_and_scoped_to_the_namespace() {
        let name = BucketName::new("team-a", "orders.v1").unwrap();
        assert_eq!(name.physical(), "team-a/orders.v1");
        for bad in ["", "..", ".hidden", "a/b", "a b", &"x".repeat(64)] {
            assert!(BucketName::new("ns", bad).is_err(), "{bad:?}");
        }
    }
}
