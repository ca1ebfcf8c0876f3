//! The in-memory backend: buckets live as long as the host process. For development and
//! `host-agent run`; a Workload that moves loses them. It is the host's own memory, so each
//! namespace may hold at most a fixed number of bytes (keys and values) in it: one tenant
//! cannot fill the host, nor crowd out another.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::BucketName;
use super::backend::{BackendError, KeyValueBackend, incremented, page};

type Bucket = BTreeMap<String, Vec<u8>>;

pub struct MemoryKeyValue {
    per_namespace: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    buckets: HashMap<String, Bucket>,
    /// Bytes of keys and values held, by namespace.
    used: HashMap<String, u64>,
}

impl State {
    fn get(&self, bucket: &BucketName, key: &str) -> Option<&Vec<u8>> {
        self.buckets.get(&bucket.physical())?.get(key)
    }

    /// Stores `value` at `key` if the namespace stays within `quota` bytes.
    fn put(
        &mut self,
        quota: u64,
        bucket: &BucketName,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), BackendError> {
        let size = |v: &[u8]| (key.len() + v.len()) as u64;
        let entries = self.buckets.entry(bucket.physical()).or_default();
        let freed = entries.get(key).map_or(0, |old| size(old));
        let used = self.used.entry(bucket.namespace.clone()).or_default();
        let after = *used - freed + size(&value);
        if after > quota {
            return Err(BackendError::Invalid(format!(
                "namespace {} is over its {quota} bytes in the memory backend",
                bucket.namespace
            )));
        }
        *used = after;
        entries.insert(key.to_string(), value);
        Ok(())
    }

    fn delete(&mut self, bucket: &BucketName, key: &str) {
        let removed = self
            .buckets
            .get_mut(&bucket.physical())
            .and_then(|b| b.remove(key));
        if let Some(old) = removed
            && let Some(used) = self.used.get_mut(&bucket.namespace)
        {
            *used -= (key.len() + old.len()) as u64;
        }
    }
}

impl Default for MemoryKeyValue {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PER_NAMESPACE)
    }
}

impl MemoryKeyValue {
    pub const DEFAULT_PER_NAMESPACE: u64 = 64 << 20;

    /// A backend holding at most `per_namespace` bytes of keys and values for each namespace.
    pub fn new(per_namespace: u64) -> Self {
        Self {
            per_namespace,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("keyvalue lock")
    }
}

#[async_trait]
impl KeyValueBackend for MemoryKeyValue {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, bucket: &BucketName, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.state().get(bucket, key).cloned())
    }

    async fn set(
        &self,
        bucket: &BucketName,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), BackendError> {
        self.state().put(self.per_namespace, bucket, key, value)
    }

    async fn delete(&self, bucket: &BucketName, key: &str) -> Result<(), BackendError> {
        self.state().delete(bucket, key);
        Ok(())
    }

    async fn list_keys(
        &self,
        bucket: &BucketName,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), BackendError> {
        let state = self.state();
        let keys = state
            .buckets
            .get(&bucket.physical())
            .into_iter()
            .flat_map(|b| b.keys().cloned());
        Ok(page(keys, cursor))
    }

    async fn increment(
        &self,
        bucket: &BucketName,
        key: &str,
        delta: u64,
    ) -> Result<u64, BackendError> {
        // Read and write under one lock, so concurrent increments never lose one.
        let mut state = self.state();
        let value = incremented(state.get(bucket, key).map(Vec::as_slice), delta)?;
        state.put(
            self.per_namespace,
            bucket,
            key,
            value.to_string().into_bytes(),
        )?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_namespace_has_its_own_quota() {
        let kv = MemoryKeyValue::new(100);
        let a = BucketName::new("team-a", "b").unwrap();
        let b = BucketName::new("team-b", "b").unwrap();
        kv.set(&a, "k", vec![0; 90]).await.unwrap();
        let err = kv.set(&a, "k2", vec![0; 20]).await.unwrap_err().to_string();
        assert!(
            err.contains("namespace team-a is over its 100 bytes"),
            "{err}"
        );
        // Another tenant is not crowded out; replacing a value counts only the difference.
        kv.set(&b, "k", vec![0; 90]).await.unwrap();
        kv.set(&a, "k", vec![0; 95]).await.unwrap();
        kv.delete(&a, "k").await.unwrap();
        kv.set(&a, "k2", vec![0; 90]).await.unwrap();
        assert_eq!(kv.increment(&b, "n", 1).await.unwrap(), 1);
        let err = kv
            .increment(&b, "counter", 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("team-b is over"), "{err}");
    }
}
