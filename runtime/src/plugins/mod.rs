//! The plugins every Weft host has, assembled in one place for the host-agent and the tests.

#[cfg(any(feature = "keyvalue", feature = "blobstore", feature = "messaging"))]
pub mod backend_set;
#[cfg(feature = "blobstore")]
pub mod blobstore;
#[cfg(feature = "config")]
pub mod config;
#[cfg(any(feature = "keyvalue", feature = "blobstore"))]
pub mod disk_quota;
pub mod http;
#[cfg(feature = "keyvalue")]
pub mod keyvalue;
#[cfg(feature = "logging")]
pub mod logging;
#[cfg(feature = "messaging")]
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

#[cfg(any(feature = "keyvalue", feature = "blobstore"))]
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
    #[cfg(feature = "keyvalue")]
    /// Key-value backends offered besides `memory` (filesystem, NATS, Redis).
    pub keyvalue: Vec<Arc<dyn keyvalue::backend::KeyValueBackend>>,
    #[cfg(feature = "blobstore")]
    /// Blob backends offered besides `memory` (filesystem, NATS).
    pub blobstore: Vec<Arc<dyn blobstore::backend::BlobBackend>>,
    #[cfg(feature = "blobstore")]
    /// Where blobs being written wait for `finish` (on the filesystem blob backend's
    /// filesystem, so committing is a rename).
    pub blob_staging: std::path::PathBuf,
    #[cfg(feature = "blobstore")]
    /// Most one namespace may have staged at once (values written but not finished).
    pub blob_staging_quota: u64,
    #[cfg(feature = "messaging")]
    /// Message brokers offered besides `memory` (NATS).
    pub messaging: Vec<Arc<dyn messaging::backend::MessagingBackend>>,
    #[cfg(feature = "messaging")]
    /// Messages handled at once on the host, across Workloads.
    pub messages_in_flight: usize,
}

// With some features off, every field left has its type's default and clippy would derive it.
#[allow(clippy::derivable_impls)]
impl Default for Backends {
    fn default() -> Self {
        Self {
            #[cfg(feature = "keyvalue")]
            keyvalue: Vec::new(),
            #[cfg(feature = "blobstore")]
            blobstore: Vec::new(),
            #[cfg(feature = "blobstore")]
            blob_staging: std::env::temp_dir()
                .join(format!("weft-blob-staging-{}", std::process::id())),
            #[cfg(feature = "blobstore")]
            blob_staging_quota: disk_quota::DiskQuota::DEFAULT_PER_NAMESPACE,
            #[cfg(feature = "messaging")]
            messaging: Vec::new(),
            #[cfg(feature = "messaging")]
            messages_in_flight: messaging::DEFAULT_HOST_IN_FLIGHT,
        }
    }
}

/// The default plugin set, with a handle on the HTTP plugin for the host's HTTP server.
pub struct DefaultPlugins {
    /// The HTTP plugin, whose router the host's HTTP server looks requests up in.
    pub http: Arc<http::HttpPlugin>,
    /// Every plugin, the HTTP one included, to build the host with.
    pub all: Vec<Arc<dyn HostPlugin>>,
}

impl DefaultPlugins {
    /// `answer_any_host_when_alone`: a lone HTTP workload answers whatever `Host` header comes
    /// (local runs); in a cluster only the hosts a workload claims reach it.
    // Without a plugin that has backends, `backends` has nothing to give.
    #[cfg_attr(
        not(any(feature = "keyvalue", feature = "blobstore", feature = "messaging")),
        allow(unused_mut, unused_variables)
    )]
    pub fn new(egress: EgressRules, answer_any_host_when_alone: bool, backends: Backends) -> Self {
        let http = Arc::new(http::HttpPlugin::new(
            Arc::new(Router::new(answer_any_host_when_alone)),
            egress,
        ));
        let mut all: Vec<Arc<dyn HostPlugin>> = vec![Arc::new(wasi::WasiPlugin), http.clone()];
        #[cfg(feature = "config")]
        all.push(Arc::new(config::ConfigPlugin));
        #[cfg(feature = "logging")]
        all.push(Arc::new(logging::LoggingPlugin));
        #[cfg(feature = "keyvalue")]
        {
            let mut offered: Vec<Arc<dyn keyvalue::backend::KeyValueBackend>> =
                vec![Arc::new(keyvalue::memory::MemoryKeyValue::default())];
            offered.extend(backends.keyvalue);
            all.push(Arc::new(keyvalue::KeyValuePlugin::new(offered, "memory")));
        }
        #[cfg(feature = "blobstore")]
        {
            let mut offered: Vec<Arc<dyn blobstore::backend::BlobBackend>> =
                vec![Arc::new(blobstore::memory::MemoryBlobs::default())];
            offered.extend(backends.blobstore);
            let staging = blobstore::staging::StagingArea::new(
                backends.blob_staging,
                backends.blob_staging_quota,
            );
            all.push(Arc::new(blobstore::BlobstorePlugin::new(
                offered, "memory", staging,
            )));
        }
        #[cfg(feature = "messaging")]
        {
            let mut offered: Vec<Arc<dyn messaging::backend::MessagingBackend>> =
                vec![Arc::new(messaging::memory::MemoryBroker::default())];
            offered.extend(backends.messaging);
            all.push(Arc::new(messaging::MessagingPlugin::new(
                offered,
                "memory",
                backends.messages_in_flight,
            )));
        }
        Self { http, all }
    }
}
