//! One lock per workload id: a start, an update and a stop of one workload happen one at a
//! time, while different workloads start side by side (ten thousand of them are not
//! serialized behind one host-wide lock).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

type Lock = Arc<tokio::sync::Mutex<()>>;

#[derive(Default)]
pub(crate) struct IdLocks(Mutex<HashMap<String, Lock>>);

/// Held while one workload changes; the id's entry goes when nobody holds or waits for it.
pub(crate) struct IdGuard<'a> {
    locks: &'a IdLocks,
    id: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl IdLocks {
    pub(crate) async fn lock(&self, id: &str) -> IdGuard<'_> {
        let lock = self.0.lock().entry(id.to_string()).or_default().clone();
        IdGuard {
            locks: self,
            id: id.to_string(),
            guard: Some(lock.lock_owned().await),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().len()
    }
}

impl Drop for IdGuard<'_> {
    fn drop(&mut self) {
        let mut locks = self.locks.0.lock();
        self.guard = None;
        // Under the map's lock no one can pick the entry up meanwhile: only the map holds it
        // when no guard and no waiter does.
        if locks
            .get(&self.id)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_id_waits_other_ids_do_not_and_entries_go() {
        let locks = IdLocks::default();
        let a = locks.lock("a").await;
        // Another id is not held up by a.
        let b = tokio::time::timeout(Duration::from_secs(5), locks.lock("b"))
            .await
            .expect("b waited for a");
        drop(b);
        // The same id waits until a is let go.
        let mut again = Box::pin(locks.lock("a"));
        assert!(futures::poll!(&mut again).is_pending());
        drop(a);
        let again = tokio::time::timeout(Duration::from_secs(5), again)
            .await
            .expect("a was let go");
        assert_eq!(locks.len(), 1);
        drop(again);
        assert_eq!(locks.len(), 0);
    }
}
