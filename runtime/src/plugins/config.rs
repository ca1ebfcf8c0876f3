//! wasi:config/store, backed by the workload's `wasi:config` interface config and each
//! component's `config` (the component's values win).

use wasmtime::component::Linker;
use wasmtime_wasi_config::WasiConfig;

use super::iface;
use crate::plugin::{ComponentBinding, HostPlugin, WitWorld};
use crate::store::Ctx;

/// The version wasmtime-wasi-config implements.
pub const WASI_CONFIG: &str = "wasi:config/store@0.2.0-rc.1";

#[derive(Default)]
pub struct ConfigPlugin;

fn view(ctx: &mut Ctx) -> WasiConfig<'_> {
    WasiConfig::from(ctx.config())
}

#[async_trait::async_trait]
impl HostPlugin for ConfigPlugin {
    fn id(&self) -> &'static str {
        "wasi-config"
    }

    fn world(&self) -> WitWorld {
        WitWorld {
            imports: vec![iface(WASI_CONFIG)],
            exports: Vec::new(),
        }
    }

    fn on_component_bind(
        &self,
        linker: &mut Linker<Ctx>,
        _binding: &ComponentBinding<'_>,
    ) -> wasmtime::Result<()> {
        wasmtime_wasi_config::add_to_linker(linker, view)
    }
}
