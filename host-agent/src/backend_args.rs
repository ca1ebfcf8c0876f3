//! The backends this host offers for capabilities with more than one (docs/keyvalue.md): a
//! Workload picks one per `hostInterfaces` entry with `config.backend`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use weft_runtime::plugins::keyvalue::backend::KeyValueBackend;
use weft_runtime::plugins::keyvalue::filesystem::FilesystemKeyValue;
use weft_runtime::plugins::keyvalue::redis::RedisKeyValue;

#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// Offer the `redis` key-value backend on this server (`redis://[user:password@]host:port`);
    /// keep the password out of the command line with the environment variable.
    #[arg(long, env = "WEFT_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
}

impl BackendArgs {
    /// The key-value backends besides the in-memory one: the filesystem (always, in `dir`) and
    /// Redis (when a URL is given).
    pub fn keyvalue(&self, dir: &Path) -> anyhow::Result<Vec<Arc<dyn KeyValueBackend>>> {
        let mut backends: Vec<Arc<dyn KeyValueBackend>> =
            vec![Arc::new(FilesystemKeyValue::new(dir))];
        if let Some(url) = &self.redis_url {
            backends.push(Arc::new(RedisKeyValue::new(url).context("--redis-url")?));
        }
        Ok(backends)
    }
}
