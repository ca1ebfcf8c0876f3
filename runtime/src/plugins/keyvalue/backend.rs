//! What a key-value backend does for `wasi:keyvalue`, whatever it stores in. Buckets arrive
//! already scoped to the Workload's namespace (see [`super::BucketName`]); a backend only keeps
//! them apart.

use async_trait::async_trait;

use super::BucketName;

/// How many keys one `list-keys` call returns at most.
pub const PAGE: usize = 100;

/// What a store keeps for an entry besides its key and value, and for a bucket besides its
/// name: counted against a namespace's quota, so a tenant cannot keep millions of empty keys
/// or buckets for free.
pub const ENTRY_BYTES: u64 = 32;
/// What a bucket costs against the quota besides its name (see [`ENTRY_BYTES`]).
pub const BUCKET_BYTES: u64 = 128;

/// What an entry costs against its namespace's quota.
pub fn entry_cost(key: &str, value: &[u8]) -> u64 {
    ENTRY_BYTES + key.len() as u64 + value.len() as u64
}

/// What a bucket costs against its namespace's quota, `physical` being its stored name.
pub fn bucket_cost(physical: &str) -> u64 {
    BUCKET_BYTES + physical.len() as u64
}

/// Why a key-value backend could not do what was asked; the guest gets it as an error value.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The request is refused as asked (a bad name or key, a quota exceeded, a value that is not a
    /// counter); the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The backend's storage failed: an I/O error or an unreachable server.
    #[error("{backend} backend: {reason}")]
    Unavailable {
        /// The failing backend's name.
        backend: &'static str,
        /// What failed, as the backend reported it.
        reason: String,
    },
}

/// A store of buckets of keys for `wasi:keyvalue`; implement it to offer another backend through
/// [`Backends::keyvalue`](crate::plugins::Backends::keyvalue).
#[async_trait]
pub trait KeyValueBackend: Send + Sync + 'static {
    /// The name a Workload picks it by (`config.backend`), reported in the Host's status.
    fn name(&self) -> &'static str;

    /// The value at `key`, or `None` if the key (or its bucket) does not exist.
    async fn get(&self, bucket: &BucketName, key: &str) -> Result<Option<Vec<u8>>, BackendError>;

    /// Stores `value` at `key`, replacing any, and makes the bucket if there is none.
    async fn set(&self, bucket: &BucketName, key: &str, value: Vec<u8>)
    -> Result<(), BackendError>;

    /// Deletes `key`; nothing happens if it (or its bucket) does not exist.
    async fn delete(&self, bucket: &BucketName, key: &str) -> Result<(), BackendError>;

    /// Whether `key` exists; by default a [`get`](Self::get), so override it if the store can
    /// answer without reading the value.
    async fn exists(&self, bucket: &BucketName, key: &str) -> Result<bool, BackendError> {
        Ok(self.get(bucket, key).await?.is_some())
    }

    /// One page of keys in a stable order, and the cursor of the next page if there is one.
    /// The cursor is opaque to guests.
    async fn list_keys(
        &self,
        bucket: &BucketName,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), BackendError>;

    /// Adds `delta` to the decimal number stored at `key` (an absent key counts as 0),
    /// atomically, and returns the new value.
    async fn increment(
        &self,
        bucket: &BucketName,
        key: &str,
        delta: u64,
    ) -> Result<u64, BackendError>;
}

/// The new value of a decimal counter, or why it cannot be one.
pub fn incremented(current: Option<&[u8]>, delta: u64) -> Result<u64, BackendError> {
    let current = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| BackendError::Invalid("the value is not a decimal number".into()))?,
    };
    current
        .checked_add(delta)
        .ok_or_else(|| BackendError::Invalid("incrementing overflows u64".into()))
}

/// A page of `keys` (sorted) starting at `cursor`.
pub fn page(keys: impl Iterator<Item = String>, cursor: Option<u64>) -> (Vec<String>, Option<u64>) {
    let start = cursor.unwrap_or(0) as usize;
    let mut keys: Vec<String> = keys.skip(start).take(PAGE + 1).collect();
    let next = (keys.len() > PAGE).then(|| {
        keys.truncate(PAGE);
        (start + PAGE) as u64
    });
    (keys, next)
}
