//! The plugins every Weft host has, assembled in one place for the host-agent and the tests.

pub mod config;
pub mod http;
pub mod keyvalue;
pub mod logging;
pub mod wasi;

use std::sync::Arc;

use weft_api::WitInterface;

use crate::egress::EgressRules;
use crate::plugin::HostPlugin;
use crate::router::Router;

/// Parses an interface name written in the source; a typo here is a bug, not bad input.
pub(crate) fn iface(name: &str) -> WitInterface {
    name.parse()
        .unwrap_or_else(|e| panic!("built-in interface {name}: {e}"))
}

/// The default plugin set, with a handle on the HTTP plugin for the host's HTTP server.
pub struct DefaultPlugins {
    pub http: Arc<http::HttpPlugin>,
    pub all: Vec<Arc<dyn HostPlugin>>,
}

impl DefaultPlugins {
    /// `answer_any_host_when_alone`: a lone HTTP workload answers whatever `Host` header comes
    /// (local runs); in a cluster only the hosts a workload claims reach it. `keyvalue` are the
    /// key-value backends offered besides the in-memory one (the default).
    pub fn new(
        egress: EgressRules,
        answer_any_host_when_alone: bool,
        keyvalue: Vec<Arc<dyn keyvalue::backend::KeyValueBackend>>,
    ) -> Self {
        let http = Arc::new(http::HttpPlugin::new(
            Arc::new(Router::new(answer_any_host_when_alone)),
            egress,
        ));
        let mut keyvalue_backends: Vec<Arc<dyn keyvalue::backend::KeyValueBackend>> =
            vec![Arc::new(keyvalue::memory::MemoryKeyValue::default())];
        keyvalue_backends.extend(keyvalue);
        let all: Vec<Arc<dyn HostPlugin>> = vec![
            Arc::new(wasi::WasiPlugin),
            http.clone(),
            Arc::new(config::ConfigPlugin),
            Arc::new(logging::LoggingPlugin),
            Arc::new(keyvalue::KeyValuePlugin::new(keyvalue_backends, "memory")),
        ];
        Self { http, all }
    }
}
