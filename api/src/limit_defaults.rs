//! What a component gets when its `limits` leave a field unset. One place for the runtime, which
//! enforces the limits and reserves `memory × maxConcurrency` of a host's budget, and for the
//! control plane, which places Workloads by the same numbers.

use std::time::Duration;

/// The memory a component reserves on its host: `limits.memory` for each instance it may run
/// at once (`maxConcurrency`; a service runs one). The runtime reserves it when the Workload
/// starts and the scheduler places Workloads by it: one rule for both.
pub fn reserved_memory(memory_bytes: u64, instances: u32) -> u64 {
    memory_bytes.saturating_mul(u64::from(instances))
}

/// `limits.memory`: 64Mi.
pub const MEMORY_BYTES: u64 = 64 << 20;
/// `limits.timeout`: 30s.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// `limits.maxConcurrency`: 8.
pub const MAX_CONCURRENCY: u32 = 8;
/// `limits.maxRequestBody`: 10Mi.
pub const MAX_REQUEST_BODY_BYTES: u64 = 10 << 20;
