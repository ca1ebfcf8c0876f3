//! The one way into a guest. An HTTP request, a linked call to a sibling, the service's `run`
//! and message handlers all go through [`ComponentRuntime::invoke`]: it takes the component's
//! concurrency slot, takes a warm instance from the component's pool or makes a fresh store and
//! instance, arms the wall-clock deadline, records the invocation metrics, sorts a failure into
//! timeout, memory, trap, overload or host error, and returns the instance to the pool only after
//! a success.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use wasmtime::component::Instance;
use wasmtime::{PoolConcurrencyLimitError, Store, Trap};

use crate::instance::{ComponentRuntime, Role};
use crate::store::{Ctx, Identity};
use crate::warm_pool::Warm;

/// The guest call an invocation makes, given a store and instance (fresh, or warm from the
/// component's pool).
pub type Call<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// Why an invocation failed, in the words status and logs use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The invocation ran past its timeout (computing or blocked in a host call).
    Timeout,
    MemoryLimit,
    Trap(String),
    /// The component is at its `maxConcurrency`.
    Busy,
    /// The host has no instance slot left right now.
    Overloaded(String),
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
    /// Runs `call` on an instance of this component (warm from its pool, else fresh), within its
    /// limits. Dropping the returned future (a client that went away) cancels the guest, frees
    /// its slot and drops the instance.
    pub async fn invoke<R, F>(&self, call: F) -> Result<R, Failure>
    where
        R: Send,
        F: for<'a> FnOnce(&'a mut Store<Ctx>, Instance) -> Call<'a, R> + Send,
    {
        let id = &self.identity;
        let series = self.series();
        let permit = {
            let _queued = series.queued();
            self.acquire().await
        };
        let _permit = match permit {
            Ok(permit) => permit,
            Err(failure) => {
                series.count(failure.label());
                log_failure(id, &failure);
                return Err(failure);
            }
        };
        let invocation = series.start_invocation();
        let run = async {
            let taken = self.pool.as_ref().and_then(|pool| {
                let warm = pool.take(Instant::now());
                series.set_warm(pool.idle());
                warm
            });
            let mut warm = match taken {
                Some(mut warm) => {
                    warm.store.set_epoch_deadline(1);
                    warm
                }
                None => {
                    let mut store = self.new_store()?;
                    let start = Instant::now();
                    let instance = self
                        .instance_pre()
                        .instantiate_async(&mut store)
                        .await
                        .map_err(|e| Failure::classify(&e, store.data().limiter.memory_refused))?;
                    invocation.instantiated(start.elapsed());
                    Warm::new(store, instance)
                }
            };
            let out = call(&mut warm.store, warm.instance)
                .await
                .map_err(|e| Failure::classify(&e, warm.store.data().limiter.memory_refused))?;
            // Only a call that succeeded puts its instance back; a memory refusal it survived
            // still ends the instance's reuse, so the next failure is classified afresh.
            if let Some(pool) = &self.pool
                && !warm.store.data().limiter.memory_refused
            {
                pool.give_back(warm, Instant::now());
                series.set_warm(pool.idle());
            }
            Ok(out)
        };
        // The deadline is wall-clock time: a guest blocked in a host call (a sleep, a read that
        // never completes) ends at it like a spinning one, its store and pool slot dropped.
        let result = match self.role {
            Role::Service => run.await,
            Role::Component => tokio::time::timeout(self.spec.limits.timeout, run)
                .await
                .unwrap_or(Err(Failure::Timeout)),
        };
        match &result {
            Ok(_) => invocation.finish("ok"),
            Err(failure) => {
                invocation.finish(failure.label());
                log_failure(id, failure);
            }
        }
        result
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

fn log_failure(id: &Identity, failure: &Failure) {
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
