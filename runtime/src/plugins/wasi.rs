//! WASI 0.2 and 0.3 (cli, clocks, filesystem, random, sockets; io in 0.2). What each component
//! may touch is decided by its store, whichever version it imports: only its mounts are
//! preopened, its TCP sockets live on its workload's own loopback (see `loopback.rs`), and its
//! environment holds only its `env`.

use wasmtime::component::Linker;

use super::iface;
use crate::component_info::ComponentInfo;
use crate::plugin::{HostPlugin, WitWorld};
use crate::store::Ctx;

/// Serves WASI 0.2 and 0.3 (cli, clocks, filesystem, random, sockets), each component limited to
/// what its store allows.
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
                "wasi:cli/environment,exit,stdin,stdout,stderr,types,terminal-input,terminal-output,terminal-stdin,terminal-stdout,terminal-stderr@0.3.0",
                "wasi:clocks/monotonic-clock,system-clock,types@0.3.0",
                "wasi:filesystem/types,preopens@0.3.0",
                "wasi:random/random,insecure,insecure-seed@0.3.0",
                "wasi:sockets/types,ip-name-lookup@0.3.0",
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
        component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        // A 0.3 component may still import a 0.2 interface (and the other way round), so each
        // version is linked when any of its packages is imported.
        const PACKAGES: [&str; 6] = [
            "wasi:cli",
            "wasi:clocks",
            "wasi:filesystem",
            "wasi:io",
            "wasi:random",
            "wasi:sockets",
        ];
        let imports = |version| PACKAGES.iter().any(|p| component.imports_track(p, version));
        if imports("0.2.0") {
            wasmtime_wasi::p2::add_to_linker_async(linker)?;
            crate::loopback::add_p2_to_linker(linker)?;
        }
        if imports("0.3.0") {
            wasmtime_wasi::p3::add_to_linker(linker)?;
            crate::loopback::add_p3_to_linker(linker)?;
        }
        Ok(())
    }
}
