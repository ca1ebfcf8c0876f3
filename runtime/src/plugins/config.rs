//! wasi:config/store, backed by the workload's `wasi:config` interface config and each
//! component's `config` (the component's values win). Both the 0.2.0-rc.1 interface that
//! wasmtime-wasi-config implements and the 0.2.0-draft one wasmCloud components import are
//! served, from the same values.

use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi_config::WasiConfig;

use super::iface;
use crate::plugin::{ComponentBinding, HostPlugin, WitWorld};
use crate::store::Ctx;

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

impl draft_store::Host for Ctx {
    fn get(&mut self, key: String) -> Result<Option<String>, draft_store::Error> {
        Ok(self.config().values.get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, draft_store::Error> {
        let values = &self.config().values;
        Ok(values.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

#[derive(Default)]
pub struct ConfigPlugin;

fn view(ctx: &mut Ctx) -> WasiConfig<'_> {
    WasiConfig::from(&ctx.config().wasmtime)
}

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

    fn on_component_bind(
        &self,
        linker: &mut Linker<Ctx>,
        binding: &ComponentBinding<'_>,
    ) -> wasmtime::Result<()> {
        let imports = |version: &str| {
            binding
                .info
                .imports
                .iter()
                .any(|i| i.starts_with("wasi:config/") && i.ends_with(version))
        };
        if imports("@0.2.0-rc.1") {
            wasmtime_wasi_config::add_to_linker(linker, view)?;
        }
        if imports("@0.2.0-draft") {
            draft_store::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |ctx| ctx)?;
        }
        Ok(())
    }
}
