//! Instances that calls share: a component whose exports are `async` (WASI 0.3) and whose pool
//! allows `maxConcurrency` above one. Each instance lives in a task of its own (a worker) that
//! runs its store's event loop and takes calls from an inbox, up to `pool.maxConcurrency` at
//! once and `pool.maxInvocations` in all. A call goes to an instance with room whose guests are
//! all waiting, else to a new instance while fewer than `limits.maxConcurrency` calls' worth of
//! instances run, else to an instance with room whose guest is not stuck computing, else to a
//! new instance: one guest that never yields holds its instance (a component instance runs one
//! task at a time), and calls that arrive meanwhile go elsewhere.
//!
//! Every limit of a call holds per call: its deadline (a call that overruns while waiting fails
//! alone and its instance takes no more calls; one that computes past it traps its instance, see
//! `deadlines.rs`), the instance's memory limit (a refused growth retires the instance), and a
//! trap fails the calls that instance held, nothing else. Work a call leaves behind may run
//! until the latest deadline of the calls the instance took; an instance still busy after that
//! is dropped.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use wasmtime::Store;
use wasmtime::component::{Accessor, Instance, InstancePre};

use crate::deadlines::Busy;
use crate::instance::ComponentRuntime;
use crate::invoke::{Call, Failure, Guest, Held};
use crate::metrics::Series;
use crate::spec::PoolSpec;
use crate::store::Ctx;

pub(crate) struct SharedPool {
    spec: PoolSpec,
    /// Workers that take calls, oldest first.
    workers: Mutex<Vec<Arc<Worker>>>,
    /// Cancelled when the component's workload stops: every instance ends at once.
    halt: CancellationToken,
}

impl SharedPool {
    pub(crate) fn new(spec: PoolSpec) -> Self {
        Self {
            spec,
            workers: Mutex::default(),
            halt: CancellationToken::new(),
        }
    }

    /// Ends every instance now, failing the calls they hold: the workload stopped.
    pub(crate) fn stop(&self) {
        self.halt.cancel();
    }

    /// Runs `call` on a shared instance, within `deadline`. The call ends `held` when it ends,
    /// whether its caller is still waiting or not.
    pub(crate) async fn call<R, F>(
        &self,
        runtime: &ComponentRuntime,
        call: F,
        deadline: Option<Instant>,
        held: Held,
    ) -> Result<R, Failure>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(Guest<'a>) -> Call<'a, R> + Send + 'static,
    {
        let deadline = deadline.unwrap_or_else(|| Instant::now() + runtime.spec.limits.timeout);
        let (tx, rx) = oneshot::channel();
        let slot: Slot<R> = Arc::new(Mutex::new(Some((tx, held))));
        let (reply, caller) = (slot.clone(), slot.clone());
        let run = job_fn(move |guest: Guest<'_>| {
            Box::pin(async move {
                let accessor = guest.accessor;
                let out = call(guest).await.map_err(|e| {
                    let refused = accessor.with(|mut a| a.data_mut().limiter.memory_refused);
                    Failure::classify(&e, refused)
                });
                deliver(&reply, out);
            })
        });
        let mut job = Job {
            run: Box::new(run),
            deadline,
            fail: Box::new(move |failure| deliver(&slot, Err(failure))),
        };
        let worker = loop {
            let worker = match self.assign(runtime) {
                Ok(worker) => worker,
                Err(failure) => {
                    (job.fail)(failure.clone());
                    return Err(failure);
                }
            };
            match worker.inbox.send(job) {
                Ok(()) => break worker,
                // It retired between taking the call and receiving it.
                Err(mpsc::error::SendError(back)) => {
                    worker.finished();
                    job = back;
                }
            }
        };
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Failure::Host(
                "the instance serving the call went away".into(),
            )),
            // Stuck behind a guest that holds the instance: nothing more goes there.
            Err(_) => {
                worker.retire("a call timed out waiting for it");
                deliver(&caller, Err(Failure::Timeout));
                Err(Failure::Timeout)
            }
        }
    }

    /// A worker that takes the call, started if need be.
    fn assign(&self, runtime: &ComponentRuntime) -> Result<Arc<Worker>, Failure> {
        let mut workers = self.workers.lock();
        workers.retain(|w| !w.is_retired());
        if let Some(w) = workers
            .iter()
            .rev()
            .find(|w| w.waits() && w.try_take(&self.spec))
        {
            return Ok(w.clone());
        }
        let enough = runtime
            .spec
            .limits
            .max_concurrency
            .div_ceil(self.spec.max_concurrency) as usize;
        if workers.len() >= enough
            && let Some(w) = workers
                .iter()
                .rev()
                .find(|w| !w.busy.is_stuck() && w.try_take(&self.spec))
        {
            return Ok(w.clone());
        }
        let worker = Worker::spawn(runtime, self.halt.clone())?;
        worker.try_take(&self.spec);
        workers.push(worker.clone());
        Ok(worker)
    }

    /// Retires instances idle past the idle timeout, and idle ones beyond the pool's size;
    /// returns how many idle instances are left.
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let mut workers = self.workers.lock();
        let mut idle = 0;
        for worker in workers.iter().rev() {
            if worker.in_flight.load(Ordering::Acquire) != 0 || worker.is_retired() {
                continue;
            }
            let since = *worker.idle_since.lock();
            if now.duration_since(since) >= self.spec.idle_timeout {
                worker.retire("idle past the idle timeout");
            } else if idle >= self.spec.size {
                worker.retire("more idle instances than the pool keeps");
            } else {
                idle += 1;
            }
        }
        workers.retain(|w| !w.is_retired());
        idle as usize
    }
}

impl Drop for SharedPool {
    /// The component stopped: its instances take no more calls and end once theirs are done.
    fn drop(&mut self) {
        for worker in self.workers.get_mut().drain(..) {
            worker.retire("its component stopped");
        }
    }
}

/// Where a call's result goes, from whichever of the call and the worker ends it first, with
/// what the call holds until then.
type Slot<R> = Arc<Mutex<Option<(oneshot::Sender<Result<R, Failure>>, Held)>>>;

fn deliver<R>(slot: &Slot<R>, result: Result<R, Failure>) {
    let taken = slot.lock().take();
    if let Some((tx, held)) = taken {
        held.finish(&result);
        let _ = tx.send(result);
    }
}

type RunFn =
    Box<dyn for<'a> FnOnce(Guest<'a>) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> + Send>;

/// Gives a closure the higher-ranked signature a [`RunFn`] needs.
fn job_fn<F>(f: F) -> F
where
    F: for<'a> FnOnce(Guest<'a>) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> + Send,
{
    f
}

/// A call on its way to a worker.
struct Job {
    run: RunFn,
    deadline: Instant,
    /// Ends the call with a failure, if it has not ended yet.
    fail: Box<dyn FnOnce(Failure) + Send>,
}

/// A call a worker has taken and not finished.
struct Pending {
    deadline: Instant,
    fail: Box<dyn FnOnce(Failure) + Send>,
}

/// One shared instance, as the pool sees it.
struct Worker {
    inbox: mpsc::UnboundedSender<Job>,
    /// Calls given to it and not finished.
    in_flight: AtomicUsize,
    /// Calls given to it in all.
    served: AtomicU32,
    retired: AtomicBool,
    /// Whether its guests may be computing: set when it takes a call, cleared whenever its
    /// event loop has nothing left to run.
    computing: AtomicBool,
    /// How long its guest has been computing (see `deadlines.rs`).
    busy: Arc<Busy>,
    idle_since: Mutex<Instant>,
    wake: Notify,
}

impl Worker {
    fn spawn(runtime: &ComponentRuntime, halt: CancellationToken) -> Result<Arc<Self>, Failure> {
        let store = runtime.new_store()?;
        let (inbox, calls) = mpsc::unbounded_channel();
        let worker = Arc::new(Self {
            inbox,
            in_flight: AtomicUsize::new(0),
            served: AtomicU32::new(0),
            retired: AtomicBool::new(false),
            computing: AtomicBool::new(true),
            busy: Arc::default(),
            idle_since: Mutex::new(Instant::now()),
            wake: Notify::new(),
        });
        tokio::spawn(serve(
            worker.clone(),
            store,
            runtime.instance_pre().clone(),
            calls,
            runtime.series().clone(),
            halt,
        ));
        Ok(worker)
    }

    /// Counts one more call on this instance, if it has room and takes calls.
    fn try_take(&self, spec: &PoolSpec) -> bool {
        if self.is_retired() {
            return false;
        }
        let room = spec.max_concurrency as usize;
        let took = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < room).then_some(n + 1)
            })
            .is_ok();
        if took && self.served.fetch_add(1, Ordering::Relaxed) + 1 >= spec.max_invocations {
            // This call is its last.
            self.retire("served maxInvocations");
        }
        took
    }

    fn finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.idle_since.lock() = Instant::now();
            self.wake.notify_one();
        }
    }

    /// Whether its guests all wait, so a call more would not queue behind computation.
    fn waits(&self) -> bool {
        !self.computing.load(Ordering::Relaxed) && !self.busy.is_stuck()
    }

    fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Takes no more calls; the instance ends once the calls it has are done.
    fn retire(&self, why: &'static str) {
        if !self.retired.swap(true, Ordering::AcqRel) {
            tracing::debug!(why, "shared instance retired");
        }
        self.wake.notify_one();
    }
}

/// A worker's task: instantiates, then serves calls in the store's event loop until retired.
async fn serve(
    worker: Arc<Worker>,
    mut store: Store<Ctx>,
    pre: InstancePre<Ctx>,
    mut calls: mpsc::UnboundedReceiver<Job>,
    series: Arc<Series>,
    halt: CancellationToken,
) {
    let pending = Mutex::new(HashMap::new());
    let start = Instant::now();
    let failure = match pre.instantiate_async(&mut store).await {
        Ok(instance) => {
            series.instantiated(start.elapsed());
            // From now on a task computing past its call's deadline traps (instantiation runs
            // no call's task, so it is not checked).
            store.data_mut().deadlines.share(worker.busy.clone());
            let result = {
                let mut run = pin!(store.run_concurrent(async |accessor| {
                    take_calls(&worker, accessor, instance, &mut calls, &pending).await
                }));
                // The event loop gave the thread back: its guests wait (or one yielded at an
                // epoch tick), so the instance may take a call more.
                let run = poll_fn(|cx| {
                    let poll = run.as_mut().poll(cx);
                    if poll.is_pending() {
                        worker.computing.store(false, Ordering::Relaxed);
                    }
                    poll
                });
                tokio::select! {
                    biased;
                    () = halt.cancelled() => Err(Halted.into()),
                    result = run => result,
                }
            };
            result.err()
        }
        Err(e) => Some(e),
    };
    worker.retire("its event loop ended");
    calls.close();
    let failure = failure.map(|e| match e.downcast_ref::<Halted>() {
        Some(_) => crate::invoke::stopped(),
        None => Failure::classify(&e, store.data().limiter.memory_refused),
    });
    drop(store);
    let now = Instant::now();
    for (_, call) in pending.into_inner().drain() {
        let call: Pending = call;
        let why = match &failure {
            Some(f) => shared_failure(f, call.deadline, now),
            None => Failure::Host("the instance retired before the call ended".into()),
        };
        (call.fail)(why);
    }
    // Calls given to it that it never started.
    while let Ok(job) = calls.try_recv() {
        let why = match &failure {
            Some(f) => shared_failure(f, job.deadline, now),
            None => Failure::Overloaded("the instance retired as the call arrived".into()),
        };
        (job.fail)(why);
    }
}

/// The instance was ended because its workload stopped.
#[derive(Debug, thiserror::Error)]
#[error("its workload stopped")]
struct Halted;

/// What a call is told when its instance failed: the failure itself if the call is past its
/// deadline (it is the one that overran, or would have by now), else that it shared the instance.
fn shared_failure(failure: &Failure, deadline: Instant, now: Instant) -> Failure {
    if now >= deadline || *failure == crate::invoke::stopped() {
        failure.clone()
    } else {
        Failure::Trap(format!(
            "the instance it shared with other calls failed: {failure}"
        ))
    }
}

/// The event loop's side of a worker: takes calls, runs them side by side, and ends once
/// retired with no call left, letting what they left behind run until the latest deadline.
async fn take_calls(
    worker: &Worker,
    accessor: &Accessor<Ctx>,
    instance: Instance,
    calls: &mut mpsc::UnboundedReceiver<Job>,
    pending: &Mutex<HashMap<u64, Pending>>,
) {
    let mut running = FuturesUnordered::new();
    let mut next_id = 0u64;
    let mut latest = Instant::now();
    let mut leftovers_checked = true;
    loop {
        if worker.is_retired() && worker.in_flight.load(Ordering::Acquire) == 0 {
            break;
        }
        tokio::select! {
            biased;
            Some((id, overran)) = running.next(), if !running.is_empty() => {
                let call = pending.lock().remove(&id);
                if let Some(call) = call
                    && overran
                {
                    // It cannot be cancelled alone: the instance takes no more calls.
                    (call.fail)(Failure::Timeout);
                    worker.retire("a call overran its deadline");
                }
                if accessor.with(|mut a| a.data_mut().limiter.memory_refused) {
                    worker.retire("a memory growth was refused");
                }
                leftovers_checked = false;
                worker.finished();
            }
            Some(job) = calls.recv() => {
                worker.computing.store(true, Ordering::Relaxed);
                latest = latest.max(job.deadline);
                let id = next_id;
                next_id += 1;
                pending.lock().insert(id, Pending { deadline: job.deadline, fail: job.fail });
                let (run, deadline) = (job.run, job.deadline);
                running.push(async move {
                    let guest = Guest { accessor, instance, deadline: Some(deadline), shared: true };
                    let overran = tokio::time::timeout_at(deadline.into(), run(guest)).await.is_err();
                    (id, overran)
                });
            }
            () = worker.wake.notified() => {}
            () = tokio::time::sleep_until(latest.into()), if running.is_empty() && !leftovers_checked => {
                // Every call it took is past its deadline: work still running was left behind.
                leftovers_checked = true;
                if has_tasks(accessor).await {
                    worker.retire("work left past every deadline");
                }
            }
        }
    }
    // What the calls left behind may run until the latest deadline; then the store goes.
    let quiet = poll_fn(|cx| accessor.poll_no_interesting_tasks(cx));
    let _ = tokio::time::timeout_at(latest.into(), quiet).await;
}

/// Whether guest tasks are still alive in the store.
async fn has_tasks(accessor: &Accessor<Ctx>) -> bool {
    poll_fn(|cx| Poll::Ready(accessor.poll_no_interesting_tasks(cx).is_pending())).await
}
