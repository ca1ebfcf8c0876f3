//! The Redis backend: each bucket is one Redis hash, `weft:kv:<namespace>/<bucket>`, so a
//! bucket's keys are listed with `HSCAN` (its cursor is the guest's opaque cursor) and
//! incremented with `HINCRBY` (atomic in Redis, across every host sharing the server).
//!
//! The connection is made on first use and re-made by redis-rs's connection manager after an
//! outage; while Redis is down, guests get error values and the host carries on.

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

use super::BucketName;
use super::backend::{BackendError, KeyValueBackend, PAGE};

pub struct RedisKeyValue {
    client: redis::Client,
    /// Where the server is, for messages (without credentials).
    shown: String,
    connection: Mutex<Option<ConnectionManager>>,
}

impl RedisKeyValue {
    /// `url`: `redis://[user:password@]host:port[/db]`.
    pub fn new(url: &str) -> Result<Self, BackendError> {
        let client = redis::Client::open(url).map_err(|e| BackendError::Unavailable {
            backend: "redis",
            reason: format!("invalid URL: {e}"),
        })?;
        let info = client.get_connection_info();
        let shown = format!("{}", info.addr());
        Ok(Self {
            client,
            shown,
            connection: Mutex::new(None),
        })
    }

    fn unavailable(&self, err: redis::RedisError) -> BackendError {
        BackendError::Unavailable {
            backend: "redis",
            reason: format!("{}: {err}", self.shown),
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, BackendError> {
        let mut connection = self.connection.lock().await;
        if let Some(connection) = &*connection {
            return Ok(connection.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(5)));
        let made = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| self.unavailable(e))?;
        *connection = Some(made.clone());
        Ok(made)
    }

    fn hash(bucket: &BucketName) -> String {
        format!("weft:kv:{}", bucket.physical())
    }
}

#[async_trait]
impl KeyValueBackend for RedisKeyValue {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, bucket: &BucketName, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let mut c = self.connection().await?;
        c.hget(Self::hash(bucket), key)
            .await
            .map_err(|e| self.unavailable(e))
    }

    async fn set(
        &self,
        bucket: &BucketName,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), BackendError> {
        let mut c = self.connection().await?;
        c.hset::<_, _, _, ()>(Self::hash(bucket), key, value)
            .await
            .map_err(|e| self.unavailable(e))
    }

    async fn delete(&self, bucket: &BucketName, key: &str) -> Result<(), BackendError> {
        let mut c = self.connection().await?;
        c.hdel::<_, _, ()>(Self::hash(bucket), key)
            .await
            .map_err(|e| self.unavailable(e))
    }

    async fn exists(&self, bucket: &BucketName, key: &str) -> Result<bool, BackendError> {
        let mut c = self.connection().await?;
        c.hexists(Self::hash(bucket), key)
            .await
            .map_err(|e| self.unavailable(e))
    }

    async fn list_keys(
        &self,
        bucket: &BucketName,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), BackendError> {
        let mut c = self.connection().await?;
        let (next, pairs): (u64, Vec<(String, Vec<u8>)>) = redis::cmd("HSCAN")
            .arg(Self::hash(bucket))
            .arg(cursor.unwrap_or(0))
            .arg("COUNT")
            .arg(PAGE)
            .query_async(&mut c)
            .await
            .map_err(|e| self.unavailable(e))?;
        let keys = pairs.into_iter().map(|(key, _)| key).collect();
        Ok((keys, (next != 0).then_some(next)))
    }

    async fn increment(
        &self,
        bucket: &BucketName,
        key: &str,
        delta: u64,
    ) -> Result<u64, BackendError> {
        let delta = i64::try_from(delta).map_err(|_| {
            BackendError::Invalid("the redis backend increments by at most 2^63-1".into())
        })?;
        let mut c = self.connection().await?;
        let value: i64 =
            c.hincr(Self::hash(bucket), key, delta)
                .await
                .map_err(|e| match e.kind() {
                    redis::ErrorKind::Server(_) | redis::ErrorKind::UnexpectedReturnType => {
                        BackendError::Invalid(format!("the value is not a decimal number ({e})"))
                    }
                    _ => self.unavailable(e),
                })?;
        u64::try_from(value).map_err(|_| BackendError::Invalid("the counter is negative".into()))
    }
}
