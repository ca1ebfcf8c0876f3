//! The memory limit of one instance: all its linear memories and tables together, since a
//! component may have several of each. Remembers whether a growth was refused so a failed
//! invocation can be reported as "memory limit exceeded" rather than as an anonymous trap.

use wasmtime::ResourceLimiter;

/// What one table element costs the host, for the limit's accounting.
const TABLE_ELEMENT_BYTES: usize = 16;

pub(crate) struct Limiter {
    limit: usize,
    /// Bytes held by every memory and table of the store so far.
    used: usize,
    pub(crate) memory_refused: bool,
}

impl Limiter {
    pub(crate) fn new(memory_bytes: u64) -> Self {
        Self {
            limit: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            used: 0,
            memory_refused: false,
        }
    }

    /// The limit, in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Grows the running total from `current` to `desired` bytes, if it stays within the limit.
    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let used = self.used.saturating_sub(current).saturating_add(desired);
        if used > self.limit {
            self.memory_refused = true;
            return false;
        }
        self.used = used;
        true
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_and_tables_share_one_limit() {
        let mut limiter = Limiter::new(32 << 20);
        assert!(limiter.memory_growing(0, 20 << 20, None).unwrap());
        // A second memory of the same size would fit alone, not together with the first.
        assert!(!limiter.memory_growing(0, 20 << 20, None).unwrap());
        assert!(limiter.memory_refused);
        assert!(limiter.memory_growing(0, 10 << 20, None).unwrap());
        // Tables count too: 2 MiB is left.
        assert!(!limiter.table_growing(0, 1 << 20, None).unwrap());
        assert!(limiter.table_growing(0, 1000, None).unwrap());
    }
}
