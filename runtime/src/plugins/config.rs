//! wasi:config/store, backed by the workload's `wasi:config` interface config and each
//! component's `config` (the component's values win). Both the 0.2.0-rc.1 interface that
//! wasmtime-wasi-config implements and the 0.2.0-draft one wasmCloud components import are
//! served, from the same values.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};

use super::iface;
use crate::component_info::ComponentInfo;
use crate::plugin::{ComponentBinding, HostPlugin, WitWorld};
use crate::store::{Ctx, StateFactory};

/// The version wasmtime-wasi-config implements.
pub const WASI_CONFIG: &str = "wasi:config/store@0.2.0-rc.1";
const WASI_CONFIG_DRAFT: &str = "wasi:config/store@0.2.0-draft";

mod draft {
    wasmtime::component::bindgen!({
        path: "../wit/config",
        world: "wasi:config/imports",
    });
}

use draft::wasi::config::store as draft_store;

/// A component's values, in the forms both served versions need; the plugin's per-store state
/// is a shared handle to them.
struct ConfigValues {
    values: BTreeMap<String, String>,
    wasmtime: WasiConfigVariables,
}

impl FromIterator<(String, String)> for ConfigValues {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let values: BTreeMap<String, String> = iter.into_iter().collect();
        let wasmtime = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Self { values, wasmtime }
    }
}

struct ConfigState(Arc<ConfigValues>);

struct Draft;

impl HasData for Draft {
    type Data<'a> = &'a ConfigValues;
}

impl draft_store::Host for &ConfigValues {
    fn get(&mut self, key: String) -> Result<Option<String>, draft_store::Error> {
        Ok(self.values.get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, draft_store::Error> {
        Ok(self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

fn values(ctx: &mut Ctx) -> &ConfigValues {
    &ctx.state::<ConfigState>().0
}

fn view(ctx: &mut Ctx) -> WasiConfig<'_> {
    WasiConfig::from(&values(ctx).wasmtime)
}

/// wasi:config values: the workload's `wasi:config` interface config (the unnamed entry),
/// overridden by the component's own `config`.
fn values_for(binding: &ComponentBinding<'_>) -> ConfigValues {
    binding
        .interface(None)
        .into_iter()
        .flat_map(|i| i.config.iter())
        .chain(binding.component.config.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Serves `wasi:config/store` (0.2.0-rc.1 and 0.2.0-draft) from the workload's `wasi:config` entry
/// and each component's `config`.
#[derive(Default)]
pub struct ConfigPlugin;

#[async_trait::async_trait]
impl HostPlugin for ConfigPlugin {
    fn id(&self) -> &'static str {
        "wasi-config"
    }

    fn world(&self) -> WitWorld {
        WitWorld {
            imports: vec![iface(WASI_CONFIG), iface(WASI_CONFIG_DRAFT)],
            exports: Vec::new(),
        }
    }

    fn add_to_linker(
        &self,
        linker: &mut Linker<Ctx>,
        component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        if component.imports_version("wasi:config", "0.2.0-rc.1") {
            wasmtime_wasi_config::add_to_linker(linker, view)?;
        }
        if component.imports_version("wasi:config", "0.2.0-draft") {
            draft_store::add_to_linker::<Ctx, Draft>(linker, values)?;
        }
        Ok(())
    }

    fn on_component_bind(
        &self,
        binding: &ComponentBinding<'_>,
    ) -> wasmtime::Result<Option<StateFactory>> {
        let values = Arc::new(values_for(binding));
        Ok(Some(StateFactory::new(move || ConfigState(values.clone()))))
    }
}
