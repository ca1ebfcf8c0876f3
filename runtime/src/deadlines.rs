//! Deadlines of the calls an instance serves at once. A WASI 0.3 instance may serve several
//! calls concurrently, each a guest task of its own. Wasmtime cannot cancel one task without
//! dropping the store (bytecodealliance/wasmtime#11833), so a call past its deadline is handled
//! by what it is doing: one that waits is abandoned by its caller (and its instance takes no
//! more calls), one that computes holds the whole instance, so the epoch check traps it there.
//! Work a call leaves behind (a task spawned to run after the response) may compute until that
//! call's deadline, not after.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use wasmtime::component::GuestTaskId;
use wasmtime::{StoreContextMut, Trap, UpdateDeadline};

use crate::engine::EPOCH_TICK;
use crate::store::Ctx;

#[derive(Default)]
pub(crate) struct TaskDeadlines {
    /// Whether calls share this instance; only then are tasks checked at each epoch.
    shared: bool,
    by_task: HashMap<GuestTaskId, Instant>,
    /// The same, oldest deadline first, so forgetting past ones costs nothing per call: calls
    /// on one instance share one timeout, so they arrive in deadline order (near enough).
    by_deadline: VecDeque<(Instant, GuestTaskId)>,
    /// How long guest code has been computing, shared with the pool, which sends no new call
    /// to an instance whose guest keeps computing.
    busy: Arc<Busy>,
}

impl TaskDeadlines {
    /// Checks every task of this store against its call's deadline from now on, recording
    /// the ticks its guest computes through in `busy`.
    pub(crate) fn share(&mut self, busy: Arc<Busy>) {
        self.shared = true;
        self.busy = busy;
    }

    /// Records the guest task serving a call, and forgets tasks whose deadline has passed (a
    /// task not known here is past its deadline).
    pub(crate) fn track(&mut self, task: GuestTaskId, deadline: Instant) {
        let now = Instant::now();
        while let Some(&(d, old)) = self.by_deadline.front()
            && d <= now
        {
            self.by_deadline.pop_front();
            if self.by_task.get(&old) == Some(&d) {
                self.by_task.remove(&old);
            }
        }
        self.by_task.insert(task, deadline);
        self.by_deadline.push_back((deadline, task));
    }

    fn overdue(&self, task: GuestTaskId, now: Instant) -> bool {
        self.by_task.get(&task).is_none_or(|d| now >= *d)
    }
}

/// The epoch callback of every store: yield to the executor, so a busy guest never starves
/// others; in a shared instance, trap a task that computes past its call's deadline.
pub(crate) fn on_epoch(mut store: StoreContextMut<'_, Ctx>) -> wasmtime::Result<UpdateDeadline> {
    if !store.data().deadlines.shared {
        return Ok(UpdateDeadline::Yield(1));
    }
    store.data().deadlines.busy.tick();
    // The oldest task on the stack is the export call the host made.
    let Some(root) = store.async_call_stack()?.last() else {
        return Ok(UpdateDeadline::Yield(1));
    };
    if store.data().deadlines.overdue(root, Instant::now()) {
        return Err(Trap::Interrupt.into());
    }
    Ok(UpdateDeadline::Yield(1))
}

/// Epoch ticks met in a row while an instance's guest code ran: a guest computing for several
/// ticks without waiting holds its instance (a component instance runs one task at a time).
#[derive(Default)]
pub(crate) struct Busy {
    /// Ticks in the current run.
    run: AtomicU32,
    /// When the last one was met, in milliseconds since the process's first tick.
    last: AtomicU64,
}

impl Busy {
    /// Ticks in a row that make a guest stuck.
    const STUCK: u32 = 3;

    fn tick(&self) {
        let now = millis();
        let last = self.last.swap(now, Ordering::Relaxed);
        if now.saturating_sub(last) <= Self::gap() {
            self.run.fetch_add(1, Ordering::Relaxed);
        } else {
            self.run.store(1, Ordering::Relaxed);
        }
    }

    /// Whether its guest has been computing for a few ticks in a row, up to now.
    pub(crate) fn is_stuck(&self) -> bool {
        let recent = millis().saturating_sub(self.last.load(Ordering::Relaxed)) <= Self::gap();
        recent && self.run.load(Ordering::Relaxed) >= Self::STUCK
    }

    /// Ticks further apart than this are not in a row.
    fn gap() -> u64 {
        3 * EPOCH_TICK.as_millis() as u64
    }
}

fn millis() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}
