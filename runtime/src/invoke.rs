//! The one way into a guest. An HTTP request, a linked call to a sibling, the service's `run`
//! and message handlers all go through [`ComponentRuntime::invoke`]: it takes the component's
//! concurrency slot, finds an instance (warm from the component's pool, shared with other calls
//! where the component's world allows it, or fresh), runs the call inside that instance's event
//! loop within the call's deadline, records the invocation metrics, sorts a failure into timeout,
//! memory, trap, overload or host error, and keeps the instance only after a success.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;
use tracing::Instrument;

use wasmtime::component::{Accessor, GuestTaskId, Instance};
use wasmtime::{PoolConcurrencyLimitError, Trap};

use crate::instance::{ComponentRuntime, Role};
use crate::metrics::Invocation;
use crate::store::{Ctx, Identity};
use crate::warm_pool::Warm;

/// The guest call an invocation makes (see [`Guest`]).
pub type Call<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// What a guest call is given: the instance, and the accessor of the store's event loop the call
/// runs in. Calls start guest functions with `start_call_concurrent` on the accessor, so that
/// several calls can share a WASI 0.3 instance.
pub struct Guest<'a> {
    /// The store's event loop the call runs in.
    pub accessor: &'a Accessor<Ctx>,
    /// The instance called.
    pub instance: Instance,
    /// When the call must be done; `None` for the service.
    pub deadline: Option<Instant>,
    /// Whether the instance is shared, and so lives on after the call: work the call leaves
    /// running (a body being written) goes on within its deadline.
    pub shared: bool,
}

impl Guest<'_> {
    /// Records `task` as the guest task of this call: where calls share an instance, a task
    /// that computes past its call's deadline traps (see `deadlines.rs`).
    pub fn track(&self, task: GuestTaskId) {
        if let Some(deadline) = self.deadline {
            self.accessor
                .with(|mut access| access.data_mut().deadlines.track(task, deadline));
        }
    }
}

/// Why an invocation failed, in the words status and logs use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The invocation ran past its timeout (computing or blocked in a host call).
    Timeout,
    /// The instance asked for more memory than its limit.
    MemoryLimit,
    /// The guest trapped; the trap's message.
    Trap(String),
    /// The component is at its `maxConcurrency`.
    Busy,
    /// The host has no instance slot left right now.
    Overloaded(String),
    /// The host failed the call (a host function's error), with its message.
    Host(String),
}

impl Failure {
    /// The `outcome` label of the invocation metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::MemoryLimit => "memory_limit",
            Failure::Trap(_) => "trap",
            Failure::Busy => "busy",
            Failure::Overloaded(_) => "overloaded",
            Failure::Host(_) => "error",
        }
    }

    /// Whether trying again a little later can help (answered 503 with `Retry-After`).
    pub fn is_overload(&self) -> bool {
        matches!(self, Failure::Busy | Failure::Overloaded(_))
    }

    /// Sorts a failed call into memory, trap, overload or host error.
    pub fn classify(err: &wasmtime::Error, memory_refused: bool) -> Self {
        if let Some(limit) = err.downcast_ref::<PoolConcurrencyLimitError>() {
            return Failure::Overloaded(limit.to_string());
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Failure::Timeout,
            _ if memory_refused => Failure::MemoryLimit,
            Some(_) => Failure::Trap(format!("{err:#}")),
            None => Failure::Host(format!("{err:#}")),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => f.write_str("invocation exceeded its timeout"),
            Failure::MemoryLimit => f.write_str("component exceeded its memory limit"),
            Failure::Trap(msg) => write!(f, "component trapped: {msg}"),
            Failure::Busy => f.write_str("component is at its concurrency limit"),
            Failure::Overloaded(msg) => write!(f, "host is out of instance slots: {msg}"),
            Failure::Host(msg) => write!(f, "host error: {msg}"),
        }
    }
}

impl ComponentRuntime {
    /// Runs `call` on an instance of this component within its limits: alone on a warm or fresh
    /// instance, or beside other calls on a shared one where the component allows it. Dropping
    /// the returned future (a client that went away) cancels the call where it has its instance
    /// to itself; on a shared instance the call runs on to its deadline, as Wasmtime cannot
    /// cancel one task of several.
    ///
    /// Each invocation is a span (`invoke`, child of the caller's: an HTTP request's carries
    /// the client's `traceparent`) naming the workload, component and export, with its
    /// outcome and whether its instance was fresh, warm or shared.
    pub async fn invoke<R, F>(&self, export: &'static str, call: F) -> Result<R, Failure>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(Guest<'a>) -> Call<'a, R> + Send + 'static,
    {
        let span = tracing::info_span!(
            "invoke",
            otel.name = %format_args!("{} {export}", self.identity.component),
            workload = &*self.identity.workload,
            component = &*self.identity.component,
            export,
            outcome = tracing::field::Empty,
            instance = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let result = self.invoke_in_span(call).instrument(span.clone()).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(failure) => failure.label(),
        };
        span.record("outcome", outcome);
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    async fn invoke_in_span<R, F>(&self, call: F) -> Result<R, Failure>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(Guest<'a>) -> Call<'a, R> + Send + 'static,
    {
        let id = &self.identity;
        let series = self.series();
        let permit = {
            let _queued = series.queued();
            tokio::select! {
                biased;
                () = self.stopped.cancelled() => Err(stopped()),
                permit = self.acquire() => permit,
            }
        };
        let permit = match permit {
            Ok(permit) => permit,
            Err(failure) => {
                series.count(failure.label());
                log_failure(id, &failure);
                return Err(failure);
            }
        };
        let deadline = match self.role {
            Role::Service => None,
            Role::Component => Some(Instant::now() + self.spec.limits.timeout),
        };
        let held = Held {
            _permit: permit,
            invocation: series.start_invocation(),
            identity: id.clone(),
        };
        match &self.shared {
            // The call accounts for itself where it runs, so the caller may go away first.
            Some(shared) => {
                tracing::Span::current().record("instance", "shared");
                shared.call(self, call, deadline, held).await
            }
            None => {
                // A stopped workload's call ends at once, its store dropped with it.
                let result = tokio::select! {
                    biased;
                    () = self.stopped.cancelled() => Err(stopped()),
                    result = self.run_alone(call, deadline) => result,
                };
                held.finish(&result);
                result
            }
        }
    }

    /// Runs `call` on an instance of its own: warm from the pool, or fresh. The deadline is
    /// wall-clock time: a guest blocked in a host call (a sleep, a read that never completes)
    /// ends at it like a spinning one, its store and pool slot dropped.
    async fn run_alone<R, F>(&self, call: F, deadline: Option<Instant>) -> Result<R, Failure>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(Guest<'a>) -> Call<'a, R> + Send + 'static,
    {
        let run = async {
            let mut warm = self.warm_or_fresh().await?;
            let instance = warm.instance;
            let out = warm
                .store
                .run_concurrent(async move |accessor| {
                    call(Guest {
                        accessor,
                        instance,
                        deadline,
                        shared: false,
                    })
                    .await
                })
                .await
                .and_then(|result| result)
                .map_err(|e| Failure::classify(&e, warm.store.data().limiter.memory_refused))?;
            Ok::<_, Failure>((out, warm))
        };
        let (out, warm) = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), run)
                .await
                .unwrap_or(Err(Failure::Timeout))?,
            None => run.await?,
        };
        self.keep(warm);
        Ok(out)
    }

    /// The most recently used warm instance, else a fresh one.
    async fn warm_or_fresh(&self) -> Result<Warm, Failure> {
        if let Some(pool) = &self.pool {
            let warm = pool.take(Instant::now());
            self.series().set_warm(pool.idle());
            if let Some(mut warm) = warm {
                warm.store.set_epoch_deadline(1);
                tracing::Span::current().record("instance", "warm");
                return Ok(warm);
            }
        }
        tracing::Span::current().record("instance", "fresh");
        let mut store = self.new_store()?;
        let start = Instant::now();
        let instance = self
            .instance_pre()
            .instantiate_async(&mut store)
            .await
            .map_err(|e| Failure::classify(&e, store.data().limiter.memory_refused))?;
        self.series().instantiated(start.elapsed());
        Ok(Warm::new(store, instance))
    }

    /// Puts an instance whose call succeeded back into the pool, if it has one. A memory
    /// refusal the call survived still ends the instance's reuse, so the next failure is
    /// classified afresh. (A pooled WASI 0.3 component's instances are shared ones, whose event
    /// loop runs between calls: `shared_pool.rs`.)
    fn keep(&self, warm: Warm) {
        let Some(pool) = &self.pool else { return };
        if warm.store.data().limiter.memory_refused {
            return;
        }
        pool.give_back(warm, Instant::now());
        self.series().set_warm(pool.idle());
    }

    /// Waits for a concurrency slot for at most half the invocation timeout, so an invocation
    /// that gets one still has time to run.
    async fn acquire(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Failure> {
        let slots = self.slots.clone();
        if self.role == Role::Service {
            return slots.acquire_owned().await.map_err(|_| Failure::Busy);
        }
        let wait = self.spec.limits.timeout / 2;
        match tokio::time::timeout(wait, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Failure::Busy),
        }
    }
}

/// Why a call of a stopped workload failed.
pub(crate) fn stopped() -> Failure {
    Failure::Host("its workload stopped".into())
}

/// What an invocation holds until it ends, wherever it ends: its concurrency slot and its
/// metrics.
pub(crate) struct Held {
    _permit: tokio::sync::OwnedSemaphorePermit,
    invocation: Invocation,
    identity: Identity,
}

impl Held {
    /// Counts the invocation by its outcome and lets its slot go.
    pub(crate) fn finish<R>(self, result: &Result<R, Failure>) {
        match result {
            Ok(_) => self.invocation.finish("ok"),
            Err(failure) => {
                self.invocation.finish(failure.label());
                log_failure(&self.identity, failure);
            }
        }
    }
}

pub(crate) fn log_failure(id: &Identity, failure: &Failure) {
    tracing::warn!(
        workload = &*id.workload,
        component = &*id.component,
        outcome = failure.label(),
        "invocation failed: {failure}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_is_one_the_metrics_forget() {
        let failures = [
            Failure::Timeout,
            Failure::MemoryLimit,
            Failure::Trap(String::new()),
            Failure::Busy,
            Failure::Overloaded(String::new()),
            Failure::Host(String::new()),
        ];
        for failure in failures {
            assert!(
                crate::metrics::OUTCOMES.contains(&failure.label()),
                "{failure}"
            );
        }
    }
}
