//! The in-memory backend: buckets live as long as the host process. For development and
//! `host-agent run`; a Workload that moves loses them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::BucketName;
use super::backend::{BackendError, KeyValueBackend, incremented, page};

#[derive(Default)]
pub struct MemoryKeyValue {
    buckets: Mutex<HashMap<String, BTreeMap<String, Vec<u8>>>>,
}

impl MemoryKeyValue {
    fn with<T>(
        &self,
        bucket: &BucketName,
        f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>) -> T,
    ) -> T {
        let mut buckets = self.buckets.lock().expect("keyvalue lock");
        f(buckets.entry(bucket.physical()).or_default())
    }
}

#[async_trait]
impl KeyValueBackend for MemoryKeyValue {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, bucket: &BucketName, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.with(bucket, |b| b.get(key).cloned()))
    }

    async fn set(
        &self,
        bucket: &BucketName,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), BackendError> {
        self.with(bucket, |b| b.insert(key.to_string(), value));
        Ok(())
    }

    async fn delete(&self, bucket: &BucketName, key: &str) -> Result<(), BackendError> {
        self.with(bucket, |b| b.remove(key));
        Ok(())
    }

    async fn list_keys(
        &self,
        bucket: &BucketName,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), BackendError> {
        Ok(self.with(bucket, |b| page(b.keys().cloned(), cursor)))
    }

    async fn increment(
        &self,
        bucket: &BucketName,
        key: &str,
        delta: u64,
    ) -> Result<u64, BackendError> {
        self.with(bucket, |b| {
            let value = incremented(b.get(key).map(Vec::as_slice), delta)?;
            b.insert(key.to_string(), value.to_string().into_bytes());
            Ok(value)
        })
    }
}
