//! Waiting for a kube-runtime cache (a reflector's `Store`) to have its first list.

use std::hash::Hash;
use std::time::Duration;

use kube::runtime::reflector::store::WriterDropped;
use kube::runtime::reflector::{Lookup, Store};

/// How often a waiter asks again.
const RECHECK: Duration = Duration::from_millis(100);

/// Waits until `store` has its first list; fails if it never will (its writer was dropped).
///
/// `Store::wait_until_ready` wakes only the last of several tasks that wait at once
/// (kube-runtime's `DelayedInit` keeps a single waker), so an earlier waiter would sleep
/// forever. Asking again every 100 ms cannot be overtaken that way.
pub async fn ready<K>(store: &Store<K>) -> Result<(), WriterDropped>
where
    K: 'static + Clone + Lookup,
    K::DynamicType: Eq + Hash + Clone,
{
    loop {
        if let Ok(result) = tokio::time::timeout(RECHECK, store.wait_until_ready()).await {
            return result;
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;

    use super::*;

    /// Two tasks wait at once; both see the store become ready.
    #[tokio::test]
    async fn every_waiter_wakes() {
        let (reader, mut writer) = store::<ConfigMap>();
        let first = tokio::spawn({
            let reader = reader.clone();
            async move { ready(&reader).await.is_ok() }
        });
        let second = tokio::spawn({
            let reader = reader.clone();
            async move { ready(&reader).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitDone);
        let both = tokio::time::timeout(Duration::from_secs(5), async {
            (first.await.unwrap(), second.await.unwrap())
        })
        .await;
        assert_eq!(both.ok(), Some((true, true)));
    }
}
