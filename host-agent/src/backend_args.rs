//! The backends this host offers for capabilities with more than one (docs/keyvalue.md,
//! docs/blobstore.md, docs/messaging.md): a Workload picks one per `hostInterfaces` entry with `config.backend`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use weft_runtime::plugins::Backends;
use weft_runtime::plugins::blobstore::filesystem::FilesystemBlobs;
use weft_runtime::plugins::blobstore::nats::NatsBlobs;
use weft_runtime::plugins::keyvalue::filesystem::FilesystemKeyValue;
use weft_runtime::plugins::keyvalue::nats::NatsKeyValue;
use weft_runtime::plugins::keyvalue::redis::RedisKeyValue;
use weft_runtime::plugins::messaging::nats::NatsMessaging;
use weft_runtime::plugins::nats::NatsConnection;

use crate::isolation_args::parse_quantity;

#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// Offer the `redis` key-value backend on this server (`redis://[user:password@]host:port`);
    /// keep the password out of the command line with the environment variable.
    #[arg(long, env = "WEFT_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Offer the `nats` backends (messaging, key-value) on this server
    /// (`nats://[user:password@]host:port`); the host connects when a Workload first needs it.
    #[arg(long, env = "WEFT_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,

    /// Most a namespace may keep in each store: on this host's disk in the filesystem
    /// key-value and blob stores and in blobs being written, on the Redis server (counted
    /// there, across hosts) (`256Mi`); past it writes are errors to that namespace only.
    #[arg(long, value_parser = parse_quantity, default_value = "256Mi")]
    pub data_quota: u64,

    /// Messages handled at once on this host, across Workloads; a subscription waits for room.
    #[arg(long, default_value_t = weft_runtime::plugins::messaging::DEFAULT_HOST_IN_FLIGHT)]
    pub max_messages_in_flight: usize,
}

impl BackendArgs {
    /// The backends besides the in-memory ones: the filesystem key-value and blob stores
    /// (always, in `keyvalue_dir` and `blob_dir`), Redis and NATS when their URLs are given.
    pub fn offered(&self, keyvalue_dir: &Path, blob_dir: &Path) -> anyhow::Result<Backends> {
        let mut backends = Backends {
            messages_in_flight: self.max_messages_in_flight.max(1),
            // Next to the containers, so committing a finished object is a rename.
            blob_staging: blob_dir.join(".staging"),
            blob_staging_quota: self.data_quota,
            ..Backends::default()
        };
        backends.keyvalue.push(Arc::new(FilesystemKeyValue::new(
            keyvalue_dir,
            self.data_quota,
        )));
        backends
            .blobstore
            .push(Arc::new(FilesystemBlobs::new(blob_dir, self.data_quota)));
        if let Some(url) = &self.redis_url {
            backends.keyvalue.push(Arc::new(
                RedisKeyValue::new(url, self.data_quota).context("--redis-url")?,
            ));
        }
        if let Some(url) = &self.nats_url {
            let nats = NatsConnection::new(url).context("--nats-url")?;
            backends
                .keyvalue
                .push(Arc::new(NatsKeyValue::new(nats.clone())));
            backends
                .blobstore
                .push(Arc::new(NatsBlobs::new(nats.clone())));
            backends.messaging.push(Arc::new(NatsMessaging::new(nats)));
        }
        Ok(backends)
    }
}
