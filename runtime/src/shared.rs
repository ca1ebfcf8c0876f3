//! Values made once per key and shared while anyone holds them: ten thousand workloads of one
//! image hold one compiled copy of its code and one instance template, not ten thousand. A value
//! is dropped with its last holder and made again if it is wanted later; callers asking for a
//! key being made wait for that one maker instead of all making it at once.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Weak};

pub(crate) struct Shared<K, V> {
    slots: Mutex<Slots<K, V>>,
}

struct Slots<K, V> {
    by_key: HashMap<K, Arc<Mutex<Weak<V>>>>,
    /// The size at which dead keys are next swept: twice what was left after the last sweep,
    /// so ten thousand distinct keys cost a few sweeps, not one per key.
    sweep_at: usize,
}

impl<K, V> Default for Shared<K, V> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(Slots {
                by_key: HashMap::new(),
                sweep_at: 1,
            }),
        }
    }
}

impl<K: Hash + Eq + Clone, V> Shared<K, V> {
    /// The live value for `key`, or the one `make` makes now (then `made` is true). A failure
    /// is not remembered: the next caller tries again.
    pub(crate) fn get_or_make<E>(
        &self,
        key: &K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<(Arc<V>, bool), E> {
        let slot = self.slot(key);
        // Held while making: others wanting this key wait here, other keys do not.
        let mut value = slot.lock();
        if let Some(live) = value.upgrade() {
            return Ok((live, false));
        }
        let made = Arc::new(make()?);
        *value = Arc::downgrade(&made);
        Ok((made, true))
    }

    /// The live value for `key`, if anyone holds one (waits while it is being made).
    pub(crate) fn get(&self, key: &K) -> Option<Arc<V>> {
        let slot = self.slots.lock().by_key.get(key)?.clone();
        slot.lock().upgrade()
    }

    /// Makes `value` the one shared for `key` from now on; holders of the old one keep it.
    pub(crate) fn replace(&self, key: &K, value: &Arc<V>) {
        *self.slot(key).lock() = Arc::downgrade(value);
    }

    fn slot(&self, key: &K) -> Arc<Mutex<Weak<V>>> {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.by_key.get(key) {
            return slot.clone();
        }
        // A new key: now and then forget the ones nobody holds or waits on, so the map stays
        // about as small as what is live. A slot being made (locked) is kept.
        if slots.by_key.len() >= slots.sweep_at {
            slots.by_key.retain(|_, slot| {
                Arc::strong_count(slot) > 1 || slot.try_lock().is_none_or(|v| v.strong_count() > 0)
            });
            slots.sweep_at = (slots.by_key.len() * 2).max(1);
        }
        slots.by_key.entry(key.clone()).or_default().clone()
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.slots.lock().by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn one_value_per_key_while_held_made_again_after() {
        let shared = Shared::<&str, String>::default();
        let (a, made) = shared
            .get_or_make(&"k", || Ok::<_, ()>("v".into()))
            .unwrap();
        assert!(made);
        let (b, made) = shared
            .get_or_make(&"k", || Ok::<_, ()>("other".into()))
            .unwrap();
        assert!(!made);
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        let (c, made) = shared
            .get_or_make(&"k", || Ok::<_, ()>("again".into()))
            .unwrap();
        assert!(made);
        assert_eq!(*c, "again");
    }

    #[test]
    fn failures_are_not_remembered_and_dead_keys_are_forgotten() {
        let shared = Shared::<u32, u32>::default();
        assert!(shared.get_or_make(&1, || Err("broken")).is_err());
        let (one, made) = shared.get_or_make(&1, || Ok::<_, ()>(1)).unwrap();
        assert!(made);
        drop(one);
        let _two = shared.get_or_make(&2, || Ok::<_, ()>(2)).unwrap();
        assert_eq!(
            shared.keys(),
            1,
            "the dead key 1 is forgotten when 2 arrives"
        );
    }

    #[test]
    fn many_distinct_keys_stay_bounded_by_what_is_live() {
        let shared = Shared::<u32, u32>::default();
        let mut live = Vec::new();
        for key in 0..10_000 {
            let (value, _) = shared.get_or_make(&key, || Ok::<_, ()>(key)).unwrap();
            // One in ten is kept; the rest die at once.
            if key % 10 == 0 {
                live.push(value);
            }
        }
        assert!(
            shared.keys() <= 2 * live.len() + 1,
            "{} keys",
            shared.keys()
        );
        assert!(shared.keys() >= live.len());
    }

    #[test]
    fn concurrent_callers_share_one_making() {
        let shared = Arc::new(Shared::<u8, u8>::default());
        let makes = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (shared, makes, barrier) = (shared.clone(), makes.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    shared
                        .get_or_make(&0, || {
                            makes.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            Ok::<_, ()>(7)
                        })
                        .unwrap()
                        .0
                })
            })
            .collect();
        let values: Vec<Arc<u8>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(makes.load(Ordering::SeqCst), 1);
        assert!(values.iter().all(|v| Arc::ptr_eq(v, &values[0])));
    }
}
