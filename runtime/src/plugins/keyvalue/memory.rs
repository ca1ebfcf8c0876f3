//! The in-memory backend: buckets live as long as the host process. For development and
//! `host-agent run`; a Workload that moves loses them. It is the host's own memory, so each
//! namespace may hold at most a fixed number of bytes (keys and values) in it: one tenant
//! cannot fill the host, nor crowd out another.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::BucketName;
use super::backend::{BackendError, KeyValueBackend, bucket_cost, entry_cost, incremented, page};

type Bucket = BTreeMap<String, Vec<u8>>;

/// Keys kept in the host's memory, lost when it exits; the `memory` backend every host has.
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

    /// Stores `value` at `key` if the namespace stays within `quota` bytes; nothing (not even
    /// the bucket) is made when it would not.
    fn put(
        &mut self,
        quota: u64,
        bucket: &BucketName,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), BackendError> {
        let physical = bucket.physical();
        let (freed, made) = match self.buckets.get(&physical) {
            Some(entries) => (entries.get(key).map_or(0, |old| entry_cost(key, old)), 0),
            None => (0, bucket_cost(&physical)),
        };
        let used = self.used.get(&bucket.namespace).copied().unwrap_or(0);
        let after = used
            .saturating_sub(freed)
            .saturating_add(entry_cost(key, &value))
            .saturating_add(made);
        if after > quota {
            return Err(BackendError::Invalid(format!(
                "namespace {} is over its {quota} bytes in the memory backend",
                bucket.namespace
            )));
        }
        self.used.insert(bucket.namespace.clone(), after);
        self.buckets
            .entry(physical)
            .or_default()
            .insert(key.to_string(), value);
        Ok(())
    }

    /// Deletes `key`, and its bucket with its last key.
    fn delete(&mut self, bucket: &BucketName, key: &str) {
        let physical = bucket.physical();
        let Some(entries) = self.buckets.get_mut(&physical) else {
            return;
        };
        let mut freed = entries.remove(key).map_or(0, |old| entry_cost(key, &old));
        if entries.is_empty() {
            self.buckets.remove(&physical);
            freed += bucket_cost(&physical);
        }
        if let Some(used) = self.used.get_mut(&bucket.namespace) {
            *used = used.saturating_sub(freed);
        }
    }
}

impl Default for MemoryKeyValue {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PER_NAMESPACE)
    }
}

impl MemoryKeyValue {
    /// The per-namespace limit [`Default`] uses: 64 MiB of keys and values.
    pub const DEFAULT_PER_NAMESPACE: u64 = 64 << 20;

    /// A backend holding at most `per_namespace` bytes of keys and values for each namespace.
    pub fn new(per_namespace: u64) -> Self {
        Self {
            per_namespace,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
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
        // One bucket "b" and one key of 90 bytes in all fit; a second such key does not.
        let a = BucketName::new("team-a", "b").unwrap();
        let b = BucketName::new("team-b", "b").unwrap();
        let one = bucket_cost(&a.physical()) + entry_cost("k", &[0; 89]);
        let kv = MemoryKeyValue::new(one + 40);
        kv.set(&a, "k", vec![0; 89]).await.unwrap();
        let err = kv.set(&a, "k2", vec![0; 20]).await.unwrap_err().to_string();
        assert!(err.contains("namespace team-a is over its"), "{err}");
        // Another tenant is not crowded out; replacing a value counts only the difference.
        kv.set(&b, "k", vec![0; 89]).await.unwrap();
        kv.set(&a, "k", vec![0; 95]).await.unwrap();
        kv.delete(&a, "k").await.unwrap();
        kv.set(&a, "k2", vec![0; 88]).await.unwrap();
        assert_eq!(kv.increment(&b, "n", 1).await.unwrap(), 1);
        let err = kv
            .increment(&b, "counter", 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("team-b is over"), "{err}");
    }

    #[tokio::test]
    async fn buckets_and_empty_keys_count_and_a_refused_write_makes_nothing() {
        let kv = MemoryKeyValue::new(1000);
        // Empty values in ever new buckets: each bucket and entry costs, so they run out.
        let mut made = 0;
        for i in 0..100 {
            let bucket = BucketName::new("team-a", &format!("b{i}")).unwrap();
            if kv.set(&bucket, "", Vec::new()).await.is_err() {
                break;
            }
            made += 1;
        }
        assert!(made < 10, "{made} buckets of empty keys fit in 1000 bytes");
        assert_eq!(
            kv.state().buckets.len(),
            made,
            "a refused write made no bucket"
        );
        // Deleting the last key lets its bucket go, and the bytes come back.
        for i in 0..made {
            let bucket = BucketName::new("team-a", &format!("b{i}")).unwrap();
            kv.delete(&bucket, "").await.unwrap();
        }
        assert!(kv.state().buckets.is_empty());
        assert_eq!(kv.state().used["team-a"], 0);
    }
}
