//! The plugins every Weft host has, assembled in one place for the host-agent and the tests.

pub mod backend_set;
pub mod blobstore;
pub mod config;
pub mod disk_quota;
pub mod http;
pub mod keyvalue;
pub mod logging;
pub mod messaging;
#[cfg(feature = "nats")]
pub mod nats;
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

/// Checks the name of a bucket or container a guest (or a manifest) gave: 1 to 63 letters,
/// digits, `-`, `_`, `.`, not starting with a dot, so it is safe as a path part or a subject
/// token on any backend.
pub fn check_resource_name(kind: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} name {name:?}: use 1 to 63 letters, digits, '-', '_' or '.', not starting with '.'"
        ))
    }
}

/// The backends a host offers besides the in-memory ones every host has (the defaults).
#[derive(Clone)]
pub struct Backends {
    pub keyvalue: Vec<Arc<dyn keyvalue::backend::KeyValueBackend>>,
    pub blobstore: Vec<Arc<dyn blobstore::backend::BlobBackend>>,
    /// Where blobs being written wait for `finish` (on the filesystem blob backend's
    /// filesystem, so committing is a rename).
    pub blob_staging: std::path::PathBuf,
    /// Most one namespace may have staged at once (values written but not finished).
    pub blob_staging_quota: u64,
    pub messaging: Vec<Arc<dyn messaging::backend::MessagingBackend>>,
    /// Messages handled at once on the host, across Workloads.
    pub messages_in_flight: usize,
}

impl Default for Backends {
    fn default() -> Self {
        Self {
            keyvalue: Vec::new(),
            blobstore: Vec::new(),
            blob_staging: std::env::temp_dir()
                .join(format!("weft-blob-staging-{}", std::process::id())),
            blob_staging_quota: disk_quota::DiskQuota::DEFAULT_PER_NAMESPACE,
            messaging: Vec::new(),
            messages_in_flight: messaging::DEFAULT_HOST_IN_FLIGHT,
        }
    }
}

/// The default plugin set, with a handle on the HTTP plugin for the host's HTTP server.
pub struct DefaultPlugins {
    pub http: Arc<http::HttpPlugin>,
    pub all: Vec<Arc<dyn HostPlugin>>,
}

impl DefaultPlugins {
    /// `answer_any_host_when_alone`: a lone HTTP workload answers whatever `Host` header comes
    /// (local runs); in a cluster only the hosts a workload claims reach it.
    pub fn new(egress: EgressRules, answer_any_host_when_alone: bool, backends: Backends) -> Self {
        let http = Arc::new(http::HttpPlugin::new(
            Arc::new(Router::new(answer_any_host_when_alone)),
            egress,
        ));
        let mut keyvalue_backends: Vec<Arc<dyn keyvalue::backend::KeyValueBackend>> =
            vec![Arc::new(keyvalue::memory::MemoryKeyValue::default())];
        keyvalue_backends.extend(backends.keyvalue);
        let mut blob_backends: Vec<Arc<dyn blobstore::backend::BlobBackend>> =
            vec![Arc::new(blobstore::memory::MemoryBlobs::default())];
        blob_backends.extend(backends.blobstore);
        let mut messaging_backends: Vec<Arc<dyn messaging::backend::MessagingBackend>> =
            vec![Arc::new(messaging::memory::MemoryBroker::default())];
        messaging_backends.extend(backends.messaging);
        let all: Vec<Arc<dyn HostPlugin>> = vec![
            Arc::new(wasi::WasiPlugin),
            http.clone(),
            Arc::new(config::ConfigPlugin),
            Arc::new(logging::LoggingPlugin),
            Arc::new(keyvalue::KeyValuePlugin::new(keyvalue_backends, "memory")),
            Arc::new(blobstore::BlobstorePlugin::new(
                blob_backends,
                "memory",
                blobstore::staging::StagingArea::new(
                    backends.blob_staging,
                    backends.blob_staging_quota,
                ),
            )),
            Arc::new(messaging::MessagingPlugin::new(
                messaging_backends,
                "memory",
                backends.messages_in_flight,
            )),
        ];
        Self { http, all }
    }
}
