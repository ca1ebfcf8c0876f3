//! The Redis backend: each bucket is one Redis hash, `weft:kv:<namespace>/<bucket>`, so a
//! bucket's keys are listed with `HSCAN` (its cursor is the guest's opaque cursor) and
//! incremented with `HINCRBY` (atomic in Redis, across every host sharing the server).
//!
//! Each namespace keeps at most its quota of bytes (keys, values and what entries and buckets
//! cost, as in the memory backend) on the server, counted in `weft:kv-used:<namespace>`. Every
//! change is a Lua script that checks and counts in one step on the server, so the quota
//! holds across writers and across every host sharing it. Data written before the count
//! existed is not in it.
//!
//! The connection is made on first use and re-made by redis-rs's connection manager after an
//! outage; while Redis is down, guests get error values and the host carries on.

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::sync::LazyLock;
use tokio::sync::Mutex;

use super::BucketName;
use super::backend::{BackendError, ENTRY_BYTES, KeyValueBackend, PAGE, bucket_cost};

// Each script runs whole on the server, sent by its hash after the first time.

/// KEYS: the bucket's hash, the namespace's count. ARGV: key, value, quota, what an entry and
/// what the bucket cost besides their bytes. Stores the value if the namespace stays within
/// its quota (a write that shrinks always does); the count moves by what the write changed.
static SET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
local freed = 0
local made = 0
if exists then
  freed = ARGV[4] + #ARGV[1] + redis.call('HSTRLEN', KEYS[1], ARGV[1])
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  made = tonumber(ARGV[5])
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local change = ARGV[4] + #ARGV[1] + #ARGV[2] + made - freed
if change > 0 and used + change > tonumber(ARGV[3]) then
  return redis.error_reply('WEFTQUOTA over')
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCRBY', KEYS[2], change)
return change
",
    )
});

/// KEYS as for [`SET`]. ARGV: key, what an entry and what the bucket cost besides their bytes.
static DELETE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local freed = ARGV[2] + #ARGV[1] + redis.call('HSTRLEN', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then freed = freed + ARGV[3] end
redis.call('DECRBY', KEYS[2], freed)
return freed
",
    )
});

/// KEYS as for [`SET`]. ARGV: key, delta, quota, what an entry and what the bucket cost. A new
/// counter is refused when its entry (at its longest, 20 digits) would not fit.
static INCREMENT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local before = 0
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if exists then
  before = ARGV[4] + #ARGV[1] + redis.call('HSTRLEN', KEYS[1], ARGV[1])
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  before = -ARGV[5]
end
if not exists then
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used + ARGV[4] + #ARGV[1] + 20 - before > tonumber(ARGV[3]) then
    return redis.error_reply('WEFTQUOTA over')
  end
end
local value = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
local after = ARGV[4] + #ARGV[1] + redis.call('HSTRLEN', KEYS[1], ARGV[1])
redis.call('INCRBY', KEYS[2], after - before)
return value
",
    )
});

/// Keys kept in Redis hashes, shared by every host using the server; the `redis` backend.
pub struct RedisKeyValue {
    client: redis::Client,
    per_namespace: u64,
    /// Where the server is, for messages (without credentials).
    shown: String,
    connection: Mutex<Option<ConnectionManager>>,
}

impl RedisKeyValue {
    /// Default bytes per namespace on the server (`--data-quota`).
    pub const DEFAULT_PER_NAMESPACE: u64 = 256 << 20;

    /// `url`: `redis://[user:password@]host:port[/db]`; each namespace keeps at most
    /// `per_namespace` bytes there.
    pub fn new(url: &str, per_namespace: u64) -> Result<Self, BackendError> {
        let client = redis::Client::open(url).map_err(|e| BackendError::Unavailable {
            backend: "redis",
            reason: format!("invalid URL: {e}"),
        })?;
        let info = client.get_connection_info();
        let shown = format!("{}", info.addr());
        Ok(Self {
            client,
            per_namespace,
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

    /// `script` on the bucket's hash and its namespace's count, with the key as first argument.
    fn invocation(
        script: &'static LazyLock<redis::Script>,
        bucket: &BucketName,
        key: &str,
    ) -> redis::ScriptInvocation<'static> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(Self::hash(bucket))
            .key(format!("weft:kv-used:{}", bucket.namespace))
            .arg(key);
        invocation
    }

    /// A write refused by the quota, or the server's error.
    fn refused(&self, bucket: &BucketName, err: redis::RedisError) -> BackendError {
        if err.code() == Some("WEFTQUOTA") {
            return BackendError::Invalid(format!(
                "namespace {} is over its {} bytes in the redis backend",
                bucket.namespace, self.per_namespace
            ));
        }
        self.unavailable(err)
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
        Self::invocation(&SET, bucket, key)
            .arg(value)
            .arg(self.per_namespace)
            .arg(ENTRY_BYTES)
            .arg(bucket_cost(&bucket.physical()))
            .invoke_async::<i64>(&mut c)
            .await
            .map(drop)
            .map_err(|e| self.refused(bucket, e))
    }

    async fn delete(&self, bucket: &BucketName, key: &str) -> Result<(), BackendError> {
        let mut c = self.connection().await?;
        Self::invocation(&DELETE, bucket, key)
            .arg(ENTRY_BYTES)
            .arg(bucket_cost(&bucket.physical()))
            .invoke_async::<i64>(&mut c)
            .await
            .map(drop)
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
        let value: i64 = Self::invocation(&INCREMENT, bucket, key)
            .arg(delta)
            .arg(self.per_namespace)
            .arg(ENTRY_BYTES)
            .arg(bucket_cost(&bucket.physical()))
            .invoke_async(&mut c)
            .await
            .map_err(|e| match e.kind() {
                _ if e.code() == Some("WEFTQUOTA") => self.refused(bucket, e),
                redis::ErrorKind::Server(_) | redis::ErrorKind::UnexpectedReturnType => {
                    BackendError::Invalid(format!("the value is not a decimal number ({e})"))
                }
                _ => self.unavailable(e),
            })?;
        u64::try_from(value).map_err(|_| BackendError::Invalid("the counter is negative".into()))
    }
}
