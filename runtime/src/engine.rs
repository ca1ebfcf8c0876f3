//! The Wasmtime engine Weft runs every component on: pooling allocator, async support, epoch
//! interruption driven by a ticker thread, and an optional on-disk cache of compiled components.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::compile_cache::CompileCache;
use crate::component_info::ComponentInfo;
use crate::error::{Error, Result, chain};

/// How often the epoch advances. Timeouts are enforced to this granularity, and long-running
/// guests yield to the executor this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    cache_dir: Option<PathBuf>,
    max_instances: u32,
    max_instance_memory: u64,
}

impl EngineBuilder {
    pub const DEFAULT_MAX_INSTANCES: u32 = 1000;
    pub const DEFAULT_MAX_INSTANCE_MEMORY: u64 = 1 << 30;
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_instances: Self::DEFAULT_MAX_INSTANCES,
            max_instance_memory: Self::DEFAULT_MAX_INSTANCE_MEMORY,
        }
    }
}

impl EngineBuilder {
    /// Keep compiled components in `dir`, so a restart does not compile them again.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Component instances alive at once across the host (the pooling allocator's slots).
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = n;
        self
    }

    /// The most memory any one instance may have; per-component limits sit below it. The pool
    /// reserves address space for each linear memory by this size, not by 4 GiB.
    pub fn max_instance_memory(mut self, bytes: u64) -> Self {
        self.max_instance_memory = bytes;
        self
    }

    pub fn build(self) -> Result<Engine> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(self.max_instances)
            .total_core_instances(self.max_instances * 4)
            .total_memories(self.max_instances * 2)
            .total_tables(self.max_instances * 4)
            .total_stacks(self.max_instances)
            .max_memories_per_component(4)
            .max_memory_size(usize::try_from(self.max_instance_memory).unwrap_or(usize::MAX));

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .memory_reservation(self.max_instance_memory)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let inner = wasmtime::Engine::new(&config).map_err(|e| Error::Engine(chain(&e)))?;
        let cache = self.cache_dir.map(|dir| CompileCache::new(dir, &inner));
        let ticker = EpochTicker::start(inner.clone());
        Ok(Engine(Arc::new(EngineInner {
            inner,
            cache,
            max_instances: self.max_instances,
            max_instance_memory: self.max_instance_memory,
            _ticker: ticker,
        })))
    }
}

/// A shared handle to the Wasmtime engine and its compile cache.
#[derive(Clone)]
pub struct Engine(Arc<EngineInner>);

struct EngineInner {
    inner: wasmtime::Engine,
    cache: Option<CompileCache>,
    max_instances: u32,
    max_instance_memory: u64,
    _ticker: EpochTicker,
}

/// A component compiled (or loaded from the cache), with what it imports and exports.
#[derive(Clone)]
pub struct CompiledComponent {
    pub component: Component,
    pub info: ComponentInfo,
    /// Whether it came from the on-disk cache instead of the compiler.
    pub from_cache: bool,
    pub compile_time: Duration,
}

impl Engine {
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.0.inner
    }

    /// Where compiled components are cached, if anywhere.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.0.cache.as_ref().map(CompileCache::root)
    }

    /// Component instances alive at once across the host.
    pub fn max_instances(&self) -> u32 {
        self.0.max_instances
    }

    /// The most memory one instance may have.
    pub fn max_instance_memory(&self) -> u64 {
        self.0.max_instance_memory
    }

    /// Compiles a component, or loads it from the cache when these exact bytes were compiled
    /// before by a compatible engine.
    pub fn compile(&self, name: &str, wasm: &[u8]) -> Result<CompiledComponent> {
        check_is_component(name, wasm)?;
        let digest = crate::digest::sha256(wasm);
        let start = Instant::now();
        let engine = &self.0.inner;
        if let Some(component) = self.0.cache.as_ref().and_then(|c| c.load(engine, &digest)) {
            let info = ComponentInfo::read(engine, &component, digest);
            return Ok(CompiledComponent {
                component,
                info,
                from_cache: true,
                compile_time: start.elapsed(),
            });
        }
        let component = Component::new(engine, wasm).map_err(|e| Error::Compile {
            component: name.to_string(),
            reason: chain(&e),
        })?;
        if let Some(cache) = &self.0.cache {
            // A cache that cannot be written costs time on the next start, nothing more.
            if let Err(err) = cache.store(&component, &digest) {
                tracing::warn!(%err, component = name, "could not write the compile cache");
            }
        }
        let info = ComponentInfo::read(engine, &component, digest);
        Ok(CompiledComponent {
            component,
            info,
            from_cache: false,
            compile_time: start.elapsed(),
        })
    }
}

/// Says clearly what a binary is when it is not a component: the most common mistake is a core
/// module built for `wasm32-wasip1` or `wasm32-unknown-unknown` without `wasm-tools component new`.
fn check_is_component(name: &str, wasm: &[u8]) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidComponent {
        component: name.to_string(),
        reason: reason.to_string(),
    };
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(invalid("not a WebAssembly binary (no \\0asm header)"));
    }
    // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
    match wasm[6..8] {
        [0, 0] => Err(invalid(
            "is a core WebAssembly module, not a component (turn it into one with `wasm-tools component new`)",
        )),
        [1, 0] => Ok(()),
        _ => Err(invalid("unknown WebAssembly binary layer")),
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: wasmtime::Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_core_modules_and_garbage() {
        let core = b"\0asm\x01\0\0\0";
        let err = check_is_component("c", core).unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        let err = check_is_component("c", b"garbage!")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a WebAssembly binary"), "{err}");
        assert!(check_is_component("c", b"\0asm\x0d\0\x01\0").is_ok());
    }
}
