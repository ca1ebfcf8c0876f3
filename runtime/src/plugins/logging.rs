//! wasi:logging/logging into `tracing`, each record tagged with its workload and component.

use wasmtime::component::{HasSelf, Linker};

use super::iface;
use crate::component_info::ComponentInfo;
use crate::plugin::{HostPlugin, WitWorld};
use crate::store::Ctx;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/logging",
        world: "wasi:logging/imports",
    });
}

use bindings::wasi::logging::logging::{Host, Level};

/// Serves `wasi:logging`, each record going to `tracing` (target `weft::guest`) tagged with its
/// workload and component.
#[derive(Default)]
pub struct LoggingPlugin;

impl Host for Ctx {
    fn log(&mut self, level: Level, context: String, message: String) {
        let id = self.identity();
        let (workload, component) = (&id.workload, &id.component);
        match level {
            Level::Trace => {
                tracing::trace!(target: crate::GUEST_LOG, %workload, %component, context, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: crate::GUEST_LOG, %workload, %component, context, "{message}")
            }
            Level::Info => {
                tracing::info!(target: crate::GUEST_LOG, %workload, %component, context, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: crate::GUEST_LOG, %workload, %component, context, "{message}")
            }
            Level::Error | Level::Critical => {
                tracing::error!(target: crate::GUEST_LOG, %workload, %component, context, critical = matches!(level, Level::Critical), "{message}")
            }
        }
    }
}

#[async_trait::async_trait]
impl HostPlugin for LoggingPlugin {
    fn id(&self) -> &'static str {
        "wasi-logging"
    }

    fn world(&self) -> WitWorld {
        WitWorld {
            imports: vec![iface("wasi:logging/logging@0.1.0-draft")],
            exports: Vec::new(),
        }
    }

    fn add_to_linker(
        &self,
        linker: &mut Linker<Ctx>,
        _component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        bindings::wasi::logging::logging::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |ctx| ctx)
    }
}
