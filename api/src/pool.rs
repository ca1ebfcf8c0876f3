//! A component's warm instance pool (`spec.components[].pool`): instances kept between
//! invocations instead of a fresh one per call. Opt-in: without it every invocation gets a fresh
//! instance, so nothing a call leaves in memory reaches the next.

use std::time::Duration;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::patterns::DURATION;
use crate::quantity::{QuantityError, parse_duration};

/// `pool.maxInvocations` when unset.
pub const DEFAULT_MAX_INVOCATIONS: u32 = 1000;
/// `pool.idleTimeout` when unset.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Warm instances of a component, kept between invocations. What one invocation leaves in an instance's memory (globals, caches, open handles) the next invocation on that instance sees: keeping state there is the component's choice. An instance that trapped, ran out of memory or timed out is never reused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    /// Most warm instances kept while idle, at most `limits.maxConcurrency` (they live within the memory the component reserves). Instances are made by invocations, not ahead of them.
    #[schemars(range(min = 1, max = 10000))]
    pub size: u32,

    /// Invocations one instance serves before it is retired and a fresh one takes its place. Defaults to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_invocations: Option<u32>,

    /// Invocations one instance may serve at the same time. Only a component whose exports are `async` (WASI 0.3) shares an instance among calls; a WASI 0.2 instance serves one call at a time whatever this says. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_concurrency: Option<u32>,

    /// How long an unused warm instance is kept (`30s`, `5m`). Defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = DURATION))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("must be a positive duration, such as 30s or 5m"))]
    pub idle_timeout: Option<String>,
}

impl Pool {
    /// `maxInvocations`, default filled in.
    pub fn max_invocations(&self) -> u32 {
        self.max_invocations.unwrap_or(DEFAULT_MAX_INVOCATIONS)
    }

    /// `maxConcurrency`, default filled in.
    pub fn max_concurrency(&self) -> u32 {
        self.max_concurrency.unwrap_or(1)
    }

    /// `idleTimeout`, default filled in.
    pub fn idle_timeout(&self) -> Result<Duration, QuantityError> {
        self.idle_timeout
            .as_deref()
            .map_or(Ok(DEFAULT_IDLE_TIMEOUT), parse_duration)
    }
}
