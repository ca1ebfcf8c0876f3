//! The state every component store carries. One fresh `Store<Ctx>` per invocation keeps
//! invocations isolated. The core holds only what every invocation needs (the WASI context with
//! the workload's loopback, the resource table, the memory limiter); each plugin keeps its own per-store state in a slot of
//! its own, made by the [`StateFactory`] it returned when it bound the component.

use std::any::{Any, TypeId};
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::deadlines::TaskDeadlines;
use crate::limiter::Limiter;
use crate::loopback::NetState;

/// Who a store belongs to, for logs and metrics.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The workload's id, `namespace/name`.
    pub workload: Arc<str>,
    /// The component's name in it.
    pub component: Arc<str>,
}

/// Host resources (streams, sockets, files, HTTP handles, blob values…) one instance may hold
/// at once at most: a guest that opens them in a loop traps, and cannot exhaust the agent's
/// file descriptors or memory by handles.
pub const MAX_RESOURCES: usize = 4096;

/// The most one resource buffers on the host (an outgoing HTTP body's write, a blob value's
/// write budget; a value being written waits on disk, counted by its namespace's quota).
pub const RESOURCE_BUFFER_BYTES: usize = 64 * 1024;

/// Resources an instance with a memory limit of `memory_bytes` may hold: one per
/// [`RESOURCE_BUFFER_BYTES`] of it (at least 256, at most [`MAX_RESOURCES`]), so what its
/// handles make the host buffer counts against its own memory limit, about once more.
pub fn max_resources(memory_bytes: usize) -> usize {
    (memory_bytes / RESOURCE_BUFFER_BYTES).clamp(256, MAX_RESOURCES)
}

/// The data of every store (one per instance): the WASI contexts, the resource table and each
/// bound plugin's state.
pub struct Ctx {
    pub(crate) identity: Identity,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// The workload's own loopback, as this store sees it (part of WASI sockets).
    pub(crate) net: NetState,
    /// When calls share this instance: each call's guest task and its deadline.
    pub(crate) deadlines: TaskDeadlines,
    slots: Slots,
}

impl Ctx {
    pub(crate) fn new(
        identity: Identity,
        wasi: WasiCtx,
        limiter: Limiter,
        net: NetState,
        slots: Slots,
    ) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(max_resources(limiter.limit()));
        Self {
            identity,
            wasi,
            table,
            limiter,
            net,
            deadlines: TaskDeadlines::default(),
            slots,
        }
    }

    /// Whose instance this is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The store's resource table (bounded: one resource per 64 KiB of the memory limit).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The state a plugin keeps in this store.
    ///
    /// # Panics
    /// When no plugin bound to this component made a `T`: host functions of a plugin are only
    /// linked into components the plugin bound, so this is a bug in that plugin.
    pub fn state<T: Send + 'static>(&mut self) -> &mut T {
        self.try_state()
            .unwrap_or_else(|| panic!("no {} in this store", std::any::type_name::<T>()))
    }

    /// The state a plugin keeps in this store, if a plugin bound to the component made a `T`.
    pub fn try_state<T: Send + 'static>(&mut self) -> Option<&mut T> {
        self.slots.get_mut()
    }

    /// A plugin's state together with the resource table, for host functions that hand out
    /// resources.
    pub fn plugin_view<T: Send + 'static>(&mut self) -> PluginView<'_, T> {
        let state = self
            .slots
            .get_mut()
            .unwrap_or_else(|| panic!("no {} in this store", std::any::type_name::<T>()));
        PluginView {
            state,
            table: &mut self.table,
        }
    }
}

/// What a plugin's host functions work on: its own state and the store's resource table.
pub struct PluginView<'a, T> {
    /// The plugin's state.
    pub state: &'a mut T,
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
}

/// Makes a plugin's state for each new store of a component it bound.
#[derive(Clone)]
pub struct StateFactory(Arc<dyn Fn() -> (TypeId, Box<dyn Any + Send>) + Send + Sync>);

impl StateFactory {
    /// A factory calling `make` for each new store.
    pub fn new<T: Send + 'static>(make: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self(Arc::new(move || {
            (TypeId::of::<T>(), Box::new(make()) as Box<dyn Any + Send>)
        }))
    }

    pub(crate) fn make(&self) -> (TypeId, Box<dyn Any + Send>) {
        (self.0)()
    }
}

/// Plugin states by type; a handful per store, so a vector beats a map.
#[derive(Default)]
pub(crate) struct Slots(Vec<(TypeId, Box<dyn Any + Send>)>);

impl Slots {
    pub(crate) fn from_factories(factories: &[StateFactory]) -> Self {
        Self(factories.iter().map(StateFactory::make).collect())
    }

    fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        let id = TypeId::of::<T>();
        self.0
            .iter_mut()
            .find(|(t, _)| *t == id)
            .and_then(|(_, state)| state.downcast_mut())
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_scale_with_the_memory_limit() {
        assert_eq!(max_resources(128 << 20), 2048);
        assert_eq!(max_resources(1 << 20), 256);
        assert_eq!(max_resources(4 << 30), MAX_RESOURCES);
    }
}
