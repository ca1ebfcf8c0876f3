//! The HTTP entry point a component exports: `wasi:http/incoming-handler@0.2.x` (a call takes
//! its instance until it returns) or `wasi:http/handler@0.3.x` (an `async` call; several may
//! share an instance).

use wasmtime::component::InstancePre;
use wasmtime_wasi_http::p2::bindings::ProxyIndices;
use wasmtime_wasi_http::p3::bindings::ServiceIndices;

use crate::store::Ctx;

/// `wasi:http/incoming-handler`, WASI 0.2's HTTP export.
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";
/// `wasi:http/handler`, WASI 0.3's HTTP export.
pub const HANDLER: &str = "wasi:http/handler";

/// Which HTTP export a component has, with what is needed to call it.
pub enum HttpExport {
    /// `wasi:http/incoming-handler@0.2.x`: a call takes the instance until it returns.
    P2(ProxyIndices),
    /// `wasi:http/handler@0.3.x`: calls are `async`, and several may share an instance.
    P3(ServiceIndices),
}

impl HttpExport {
    /// The export of the component behind `pre`, a 0.3 one first.
    pub fn of(pre: &InstancePre<Ctx>) -> wasmtime::Result<Self> {
        match ServiceIndices::new(pre) {
            Ok(indices) => Ok(Self::P3(indices)),
            Err(_) => Ok(Self::P2(ProxyIndices::new(pre)?)),
        }
    }
}
