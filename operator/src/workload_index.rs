//! Indexes kept up to date from the one Workload watch, event by event, so a reconciliation
//! asks an index instead of scanning every Workload in the cache. A relist (the watch restarting)
//! is applied as it arrives, and what it no longer lists is removed when it ends.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;
use weft_api::Workload;

/// What one index keeps of each Workload.
pub trait Index: Default {
    /// Records `workload` (replacing what was kept of it); returns the other Workloads whose
    /// reconciliation the change concerns.
    fn set(&mut self, key: ObjectRef<Workload>, workload: &Workload) -> Vec<ObjectRef<Workload>>;
    /// Forgets `key`; returns the other Workloads whose reconciliation that concerns.
    fn remove(&mut self, key: &ObjectRef<Workload>) -> Vec<ObjectRef<Workload>>;
    /// Every Workload the index keeps something of.
    fn keys(&self) -> Vec<ObjectRef<Workload>>;
}

/// An [`Index`] behind a lock, fed by the watch.
#[derive(Default)]
pub struct Indexed<I> {
    inner: Mutex<State<I>>,
}

#[derive(Default)]
struct State<I> {
    index: I,
    /// The Workloads seen since a relist began; the others are forgotten when it ends.
    relisted: Option<HashSet<ObjectRef<Workload>>>,
}

impl<I: Index> Indexed<I> {
    fn lock(&self) -> MutexGuard<'_, State<I>> {
        // Nothing in here panics while holding the lock; a poisoned one is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one event of the Workload watch; returns the Workloads to reconcile because of
    /// it (besides the one the event is about).
    pub fn observe(&self, event: &Event<Workload>) -> Vec<ObjectRef<Workload>> {
        let mut state = self.lock();
        match event {
            Event::Init => {
                state.relisted = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(workload) => {
                let key = ObjectRef::from_obj(workload);
                if let Some(relisted) = state.relisted.as_mut() {
                    relisted.insert(key.clone());
                }
                state.index.set(key, workload)
            }
            Event::InitDone => {
                let Some(relisted) = state.relisted.take() else {
                    return Vec::new();
                };
                let gone: Vec<_> = (state.index.keys().into_iter())
                    .filter(|k| !relisted.contains(k))
                    .collect();
                gone.iter().flat_map(|k| state.index.remove(k)).collect()
            }
            Event::Apply(workload) => state.index.set(ObjectRef::from_obj(workload), workload),
            Event::Delete(workload) => state.index.remove(&ObjectRef::from_obj(workload)),
        }
    }

    /// Reads the index.
    pub fn read<T>(&self, f: impl FnOnce(&I) -> T) -> T {
        f(&self.lock().index)
    }
}
