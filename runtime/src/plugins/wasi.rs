//! WASI 0.2 (cli, clocks, filesystem, io, random, sockets). What each component may touch is
//! decided by its store: only its mounts are preopened, its TCP sockets live on its workload's
//! own loopback (see `loopback.rs`), and its environment holds only its `env`.

use wasmtime::component::Linker;

use super::iface;
use crate::component_info::ComponentInfo;
use crate::plugin::{HostPlugin, WitWorld};
use crate::store::Ctx;

#[derive(Default)]
pub struct WasiPlugin;

#[async_trait::async_trait]
impl HostPlugin for WasiPlugin {
    fn id(&self) -> &'static str {
        "wasi"
    }

    fn world(&self) -> WitWorld {
        WitWorld {
            imports: [
                "wasi:cli/environment,exit,stdin,stdout,stderr,terminal-input,terminal-output,terminal-stdin,terminal-stdout,terminal-stderr@0.2.0",
                "wasi:clocks/monotonic-clock,wall-clock@0.2.0",
                "wasi:filesystem/types,preopens@0.2.0",
                "wasi:io/error,poll,streams@0.2.0",
                "wasi:random/random,insecure,insecure-seed@0.2.0",
                "wasi:sockets/network,instance-network,tcp,tcp-create-socket,udp,udp-create-socket,ip-name-lookup@0.2.0",
            ]
            .into_iter()
            .map(iface)
            .collect(),
            exports: Vec::new(),
        }
    }

    fn add_to_linker(
        &self,
        linker: &mut Linker<Ctx>,
        _component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)?;
        crate::loopback::add_to_linker(linker)
    }
}
