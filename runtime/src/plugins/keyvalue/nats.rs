//! The NATS backend: each bucket is one JetStream key-value bucket, shared by every host on the
//! server, so a Workload's state follows it to another host. Physical names (JetStream allows
//! only `[A-Za-z0-9_-]` in bucket names and a narrow alphabet in keys):
//!
//! - bucket `orders.v1` of namespace `shop` → `weft_shop_orders_dv1` (`_` is written `__` and
//!   `.` is written `_d`, so the mapping is one-to-one; namespaces hold no `_`);
//! - key `k` → its bytes in URL-safe base64 (an empty key is refused).
//!
//! `increment` is a compare-and-swap on the key's revision, retried on conflict; an absent (or
//! deleted) key starts from the delta. Each bucket keeps one revision per key and holds at most
//! [`MAX_BUCKET_BYTES`].

use std::collections::HashMap;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, Store, UpdateErrorKind};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures::TryStreamExt;
use tokio::sync::Mutex;

use super::BucketName;
use super::backend::{BackendError, KeyValueBackend, incremented, page};
use crate::plugins::nats::{NatsConnection, jetstream_name};

/// The most one bucket holds on the server (JetStream refuses writes past it).
pub const MAX_BUCKET_BYTES: i64 = 64 << 20;
/// The largest value (NATS's default `max_payload`).
const MAX_VALUE_BYTES: i32 = 1 << 20;
/// Longest key, before encoding.
const MAX_KEY_BYTES: usize = 512;
/// Compare-and-swap attempts before an increment gives up.
const MAX_ATTEMPTS: usize = 1000;

/// Keys kept in JetStream key-value buckets on a NATS server, shared by every host using it; the
/// `nats` backend.
pub struct NatsKeyValue {
    nats: NatsConnection,
    /// Buckets opened so far, by physical name.
    stores: Mutex<HashMap<String, Store>>,
}

impl NatsKeyValue {
    /// A backend on the server behind `nats`; nothing connects until first use.
    pub fn new(nats: NatsConnection) -> Self {
        Self {
            nats,
            stores: Mutex::default(),
        }
    }

    fn unavailable(&self, err: impl std::fmt::Display) -> BackendError {
        BackendError::Unavailable {
            backend: "nats",
            reason: self.nats.describe(err),
        }
    }

    /// The JetStream bucket of `bucket`, made on first use.
    async fn store(&self, bucket: &BucketName) -> Result<Store, BackendError> {
        let name = physical(bucket);
        let mut stores = self.stores.lock().await;
        if let Some(store) = stores.get(&name) {
            return Ok(store.clone());
        }
        let jetstream = self
            .nats
            .jetstream()
            .await
            .map_err(|e| self.unavailable(e))?;
        let store = jetstream
            .create_or_update_key_value(kv::Config {
                bucket: name.clone(),
                description: format!("weft keyvalue {}", bucket.physical()),
                history: 1,
                max_bytes: MAX_BUCKET_BYTES,
                max_value_size: MAX_VALUE_BYTES,
                ..Default::default()
            })
            .await
            .map_err(|e| self.unavailable(format!("bucket {name}: {e}")))?;
        stores.insert(name, store.clone());
        Ok(store)
    }
}

fn physical(bucket: &BucketName) -> String {
    jetstream_name(&bucket.namespace, &bucket.bucket)
}

fn encode(key: &str) -> Result<String, BackendError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(BackendError::Invalid(format!(
            "keys are 1 to {MAX_KEY_BYTES} bytes on the nats backend"
        )));
    }
    Ok(URL_SAFE_NO_PAD.encode(key))
}

fn decode(key: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(key).ok()?).ok()
}

#[async_trait]
impl KeyValueBackend for NatsKeyValue {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn get(&self, bucket: &BucketName, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let key = encode(key)?;
        let store = self.store(bucket).await?;
        let value = store.get(key).await.map_err(|e| self.unavailable(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    async fn set(
        &self,
        bucket: &BucketName,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), BackendError> {
        let key = encode(key)?;
        if value.len() > MAX_VALUE_BYTES as usize {
            return Err(BackendError::Invalid(format!(
                "values are at most {MAX_VALUE_BYTES} bytes on the nats backend"
            )));
        }
        let store = self.store(bucket).await?;
        store
            .put(key, Bytes::from(value))
            .await
            .map(|_| ())
            .map_err(|e| self.unavailable(e))
    }

    async fn delete(&self, bucket: &BucketName, key: &str) -> Result<(), BackendError> {
        let key = encode(key)?;
        let store = self.store(bucket).await?;
        store.delete(key).await.map_err(|e| self.unavailable(e))
    }

    async fn list_keys(
        &self,
        bucket: &BucketName,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), BackendError> {
        let store = self.store(bucket).await?;
        let mut keys: Vec<String> = store
            .keys()
            .await
            .map_err(|e| self.unavailable(e))?
            .try_collect::<Vec<String>>()
            .await
            .map_err(|e| self.unavailable(e))?
            .iter()
            .filter_map(|k| decode(k))
            .collect();
        keys.sort();
        Ok(page(keys.into_iter(), cursor))
    }

    async fn increment(
        &self,
        bucket: &BucketName,
        key: &str,
        delta: u64,
    ) -> Result<u64, BackendError> {
        let key = encode(key)?;
        let store = self.store(bucket).await?;
        for _ in 0..MAX_ATTEMPTS {
            let entry = store
                .entry(key.clone())
                .await
                .map_err(|e| self.unavailable(e))?;
            let live = entry.as_ref().filter(|e| e.operation == Operation::Put);
            let next = incremented(live.map(|e| e.value.as_ref()), delta)?;
            let value = Bytes::from(next.to_string());
            let written = match &entry {
                // A deleted key still has a revision to swap on.
                Some(entry) => store
                    .update(&key, value, entry.revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        (
                            e.kind() == UpdateErrorKind::WrongLastRevision,
                            e.to_string(),
                        )
                    }),
                None => store
                    .create(&key, value)
                    .await
                    .map(|_| ())
                    .map_err(|e| (e.kind() == CreateErrorKind::AlreadyExists, e.to_string())),
            };
            match written {
                Ok(()) => return Ok(next),
                Err((true, _)) => continue, // someone else wrote first: read again
                Err((false, reason)) => return Err(self.unavailable(reason)),
            }
        }
        Err(self.unavailable(format!(
            "increment gave up after {MAX_ATTEMPTS} conflicting writes"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_names_are_one_to_one_and_valid_for_jetstream() {
        let name = |ns: &str, b: &str| physical(&BucketName::new(ns, b).unwrap());
        assert_eq!(name("shop", "orders.v1"), "weft_shop_orders_dv1");
        assert_ne!(name("shop", "a_d"), name("shop", "a.d"));
        assert!(
            name("team-a", "x_y.z-w")
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
        assert_eq!(
            decode(&encode("any key/with spaces").unwrap()).unwrap(),
            "any key/with spaces"
        );
        assert!(encode("").is_err());
    }
}
