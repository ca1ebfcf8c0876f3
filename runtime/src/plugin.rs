//! Host plugins: how the host gives components their capabilities. A plugin says which WIT
//! interfaces it provides (components import them) and which it drives (components export
//! them); it binds only to workloads whose components actually use one of them.

use std::sync::Arc;

use async_trait::async_trait;
use wasmtime::component::Linker;
use weft_api::WitInterface;

use crate::component_info::ComponentInfo;
use crate::spec::{ComponentSpec, InterfaceConfig, WorkloadSpec};
use crate::store::{Ctx, StateFactory};
use crate::workload::ResolvedWorkload;

/// The interfaces a plugin implements, seen from the component's side.
#[derive(Clone, Debug, Default)]
pub struct WitWorld {
    /// Interfaces the plugin provides to components that import them.
    pub imports: Vec<WitInterface>,
    /// Interfaces the plugin calls on components that export them.
    pub exports: Vec<WitInterface>,
}

impl WitWorld {
    /// Whether the plugin provides what a component imports under `name`.
    pub fn provides(&self, import: &WitInterface) -> bool {
        self.imports.iter().any(|i| i.satisfies(import))
    }

    /// Whether the plugin drives an interface a component exports (or a workload asks for).
    pub fn drives(&self, export: &WitInterface) -> bool {
        self.exports.iter().any(|i| i.satisfies(export))
    }

    /// Whether a `hostInterfaces` entry is about a package this plugin serves (any of its
    /// interfaces), so the entry's configuration is the plugin's to read.
    pub fn serves_package(&self, entry: &InterfaceConfig) -> bool {
        let package = WitInterface::package(
            entry.interface.namespace.clone(),
            entry.interface.package.clone(),
            entry.interface.version.clone(),
        );
        self.imports
            .iter()
            .chain(&self.exports)
            .any(|i| i.satisfies(&package))
    }
}

/// Whether the interfaces of a host's plugins, together, serve `wanted`. The one rule: the
/// operator places a Workload on a Host by it (over the Host's reported interfaces) and the
/// runtime accepts the Workload by it, so a placed Workload is never refused for this.
pub fn serves<'a>(
    served: impl IntoIterator<Item = &'a WitInterface>,
    wanted: &WitInterface,
) -> bool {
    wanted.satisfied_by(served)
}

/// One component being bound: what it is and what it really imports and exports.
pub struct ComponentBinding<'a> {
    /// The workload the component belongs to.
    pub workload: &'a WorkloadSpec,
    /// The component.
    pub component: &'a ComponentSpec,
    /// What the component really imports and exports.
    pub info: &'a ComponentInfo,
    /// Whether this is the workload's long-running service.
    pub is_service: bool,
    /// The workload's `hostInterfaces` entries for packages this plugin serves, each with its
    /// optional `name` and its own `config`.
    pub interfaces: Vec<&'a InterfaceConfig>,
}

impl ComponentBinding<'_> {
    /// The entry named `name` (`None`: the unnamed one).
    pub fn interface(&self, name: Option<&str>) -> Option<&InterfaceConfig> {
        self.interfaces
            .iter()
            .copied()
            .find(|i| i.name.as_deref() == name)
    }
}

/// A capability provider, modelled on wash-runtime's `HostPlugin`. Hooks return
/// `wasmtime::Result` so plugins can use `add_to_linker` functions directly.
#[async_trait]
pub trait HostPlugin: Send + Sync + 'static {
    /// Unique among the host's plugins.
    fn id(&self) -> &'static str;

    /// The interfaces the plugin provides to components and drives in them.
    fn world(&self) -> WitWorld;

    /// The backends a Workload may pick from (`memory`, `filesystem`, `nats`, ...), reported in
    /// the Host's status; the first is the default.
    fn backends(&self) -> Vec<&'static str> {
        vec!["built-in"]
    }

    /// Called once before the host accepts workloads.
    async fn start(&self) -> wasmtime::Result<()> {
        Ok(())
    }

    /// Called once per workload that uses this plugin, before any of its components is bound;
    /// the place to refuse a workload (bad configuration, a conflict) before it starts.
    async fn on_workload_bind(&self, _workload: &WorkloadSpec) -> wasmtime::Result<()> {
        Ok(())
    }

    /// Adds the plugin's host functions to the linker of a component that imports what the
    /// plugin provides. What is linked may depend on `component` (its imports) only, never on a
    /// workload: every component of one digest shares one linked template, whoever runs it.
    /// Everything of a workload goes in the state made by [`HostPlugin::on_component_bind`].
    fn add_to_linker(
        &self,
        _linker: &mut Linker<Ctx>,
        _component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        Ok(())
    }

    /// Returns what makes the plugin's state in each store of the component (see
    /// [`Ctx::state`]), if it keeps any: the place to read the workload's configuration for
    /// this component, and to refuse it.
    fn on_component_bind(
        &self,
        _binding: &ComponentBinding<'_>,
    ) -> wasmtime::Result<Option<StateFactory>> {
        Ok(None)
    }

    /// Called when a workload is ready to run (also when it replaces an older version).
    async fn on_workload_resolved(
        &self,
        _workload: &Arc<ResolvedWorkload>,
    ) -> wasmtime::Result<()> {
        Ok(())
    }

    /// Called when a workload stops.
    async fn on_workload_unbind(&self, _workload_id: &str) -> wasmtime::Result<()> {
        Ok(())
    }

    /// Called when the host shuts down.
    async fn stop(&self) -> wasmtime::Result<()> {
        Ok(())
    }
}
