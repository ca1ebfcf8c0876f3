//! Warm instances of one component, kept between invocations ([`crate::spec::PoolSpec`]). An
//! invocation takes the most recently used one (its memory is the likeliest to be in cache) or
//! makes a fresh one; after a successful call the instance comes back unless it has served
//! `max_invocations` or the pool is full. A failed invocation's instance is dropped with its
//! store, so nothing a trap or timeout left behind is ever reused. Idle instances past
//! `idle_timeout` are dropped when the pool is next touched or swept.

use parking_lot::Mutex;
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::Instance;

use crate::spec::PoolSpec;
use crate::store::Ctx;

/// An instance with its store, and how it has been used.
pub(crate) struct Warm {
    pub store: Store<Ctx>,
    pub instance: Instance,
    /// Invocations it has served.
    pub uses: u32,
    idle_since: Instant,
}

impl Warm {
    pub fn new(store: Store<Ctx>, instance: Instance) -> Self {
        Self {
            store,
            instance,
            uses: 0,
            idle_since: Instant::now(),
        }
    }
}

pub(crate) struct WarmPool {
    spec: PoolSpec,
    idle: Mutex<Vec<Warm>>,
}

impl WarmPool {
    pub fn new(spec: PoolSpec) -> Self {
        Self {
            spec,
            idle: Mutex::default(),
        }
    }

    /// The most recently used idle instance that is still fresh enough, if any.
    pub fn take(&self, now: Instant) -> Option<Warm> {
        let mut expired = Vec::new();
        let taken = {
            let mut idle = self.idle.lock();
            self.expire(&mut idle, now, &mut expired);
            idle.pop()
        };
        // Stores are dropped outside the lock: freeing an instance is not free.
        drop(expired);
        taken
    }

    /// Returns an instance after a successful invocation: kept while it has invocations left
    /// and the pool has room, dropped otherwise.
    pub fn give_back(&self, mut warm: Warm, now: Instant) {
        warm.uses += 1;
        if warm.uses >= self.spec.max_invocations {
            return;
        }
        warm.idle_since = now;
        let mut idle = self.idle.lock();
        if idle.len() < self.spec.size as usize {
            idle.push(warm);
            return;
        }
        drop(idle);
        drop(warm);
    }

    /// Drops idle instances past the idle timeout; returns how many are left.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut expired = Vec::new();
        let left = {
            let mut idle = self.idle.lock();
            self.expire(&mut idle, now, &mut expired);
            idle.len()
        };
        drop(expired);
        left
    }

    /// Idle instances now.
    pub fn idle(&self) -> usize {
        self.idle.lock().len()
    }

    /// Moves the expired idle instances (the oldest, at the front) into `expired`.
    fn expire(&self, idle: &mut Vec<Warm>, now: Instant, expired: &mut Vec<Warm>) {
        let stale = idle
            .iter()
            .take_while(|w| now.duration_since(w.idle_since) >= self.spec.idle_timeout)
            .count();
        expired.extend(idle.drain(..stale));
    }
}
