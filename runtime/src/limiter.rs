//! Memory limits per store, remembering whether a growth was refused so a failed invocation can
//! be reported as "memory limit exceeded" rather than as an anonymous trap.

use wasmtime::ResourceLimiter;

pub(crate) struct Limiter {
    memory_bytes: usize,
    pub(crate) memory_refused: bool,
}

impl Limiter {
    pub(crate) fn new(memory_bytes: u64) -> Self {
        Self {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            memory_refused: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        if !allowed {
            self.memory_refused = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold references, not data; a generous fixed cap stops runaway growth.
        Ok(desired <= 1_000_000)
    }
}
