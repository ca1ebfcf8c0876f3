//! The Wasmtime engine Weft runs every component on: pooling allocator, async support, epoch
//! interruption driven by a ticker thread, compiled code shared by digest, and an optional
//! on-disk cache of compiled components.
//!
//! Compiling is tiered: a large component (a JavaScript or Python runtime of 10-20 MB takes
//! Cranelift 8-10 s on two cores) is first compiled by Winch, Wasmtime's baseline compiler, in
//! about a sixth of the time, so it serves at once; [`Engine::optimize`] then compiles it with
//! Cranelift, and the host swaps the workload onto that code as a live update.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Config, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Strategy};

use crate::compile_cache::CompileCache;
use crate::component_info::ComponentInfo;
use crate::error::{Error, Result};
use crate::shared::Shared;

/// How often the epoch advances. Timeouts are enforced to this granularity, and long-running
/// guests yield to the executor this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Linear memory a freed pool slot keeps resident (reset to its image, never another tenant's).
const KEEP_RESIDENT: usize = 2 << 20;

/// Builds an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    cache_dir: Option<PathBuf>,
    max_instances: u32,
    max_instance_memory: u64,
    compiler: Compiler,
}

/// Which compilers make a component's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiler {
    /// Components larger than `baseline_above` bytes (and not in the compile cache) first run
    /// on Winch's code while Cranelift compiles them, then move to Cranelift's; smaller ones
    /// get Cranelift's at once.
    Tiered {
        /// The size above which a component starts on Winch's code.
        baseline_above: usize,
    },
    /// Cranelift only: the fastest code, the slowest first start.
    Cranelift,
    /// Winch only (services excepted, which always get Cranelift's code): the fastest starts
    /// and the least compile CPU, for code that runs slower.
    Winch,
}

impl Default for Compiler {
    fn default() -> Self {
        Self::Tiered {
            baseline_above: EngineBuilder::DEFAULT_BASELINE_ABOVE,
        }
    }
}

impl EngineBuilder {
    /// Instances the host runs at once, unless [`EngineBuilder::max_instances`] says otherwise.
    pub const DEFAULT_MAX_INSTANCES: u32 = 1000;
    /// The most memory one instance may have (1 GiB), unless
    /// [`EngineBuilder::max_instance_memory`] says otherwise.
    pub const DEFAULT_MAX_INSTANCE_MEMORY: u64 = 1 << 30;
    /// With [`Compiler::Tiered`] by default, components larger than this (1 MiB) start on
    /// baseline code. Below it Cranelift takes well under a second, and a second compile would
    /// cost more than it saves.
    pub const DEFAULT_BASELINE_ABOVE: usize = 1 << 20;
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_instances: Self::DEFAULT_MAX_INSTANCES,
            max_instance_memory: Self::DEFAULT_MAX_INSTANCE_MEMORY,
            compiler: Compiler::default(),
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

    /// Which compilers make the code: tiered (the default), Cranelift only or Winch only.
    pub fn compiler(mut self, compiler: Compiler) -> Self {
        self.compiler = compiler;
        self
    }

    /// Makes the engine and starts its epoch ticker (which times out guest calls).
    pub fn build(self) -> Result<Engine> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(self.max_instances)
            .total_core_instances(self.max_instances * 4)
            .total_memories(self.max_instances * 2)
            .total_tables(self.max_instances * 4)
            .total_stacks(self.max_instances)
            .max_memories_per_component(4)
            .max_memory_size(usize::try_from(self.max_instance_memory).unwrap_or(usize::MAX));
        // A freed slot's first pages are reset with memset instead of madvise, so the next
        // instance does not fault them in again: about 15-25% more fresh requests per second for
        // hello-http on this machine, at most this much resident per idle slot.
        pool.linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 * 1024);

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .memory_reservation(self.max_instance_memory)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let inner = wasmtime::Engine::new(&config).map_err(|source| Error::Engine {
            what: "cannot configure Wasmtime",
            source,
        })?;
        let baseline = match self.compiler {
            Compiler::Tiered { baseline_above } => Some((baseline_engine()?, baseline_above)),
            Compiler::Winch => Some((baseline_engine()?, 0)),
            Compiler::Cranelift => None,
        };
        let cache = self.cache_dir.map(|dir| CompileCache::new(dir, &inner));
        let ticker = EpochTicker::start(
            std::iter::once(inner.clone())
                .chain(baseline.as_ref().map(|(engine, _)| engine.clone()))
                .collect(),
        );
        Ok(Engine(Arc::new(EngineInner {
            inner,
            baseline,
            cache,
            loaded: Shared::default(),
            optimizing: Shared::default(),
            tiers_up: matches!(self.compiler, Compiler::Tiered { .. }),
            max_instances: self.max_instances,
            max_instance_memory: self.max_instance_memory,
            closing: AtomicBool::new(false),
            _ticker: ticker,
        })))
    }
}

/// The engine for a component's first minutes: Winch compiles without optimizing. Its
/// instances are allocated on demand, not from a pool of their own: they live until Cranelift's
/// code replaces them. Memories are reserved at the default 4 GiB, so Winch emits no bounds
/// checks (a third faster to compile); the store's limiter still caps each instance's memory.
/// Winch leaves the trampolines to Cranelift (a JavaScript runtime has six thousand, one per
/// function its tables hold): unoptimized, they take a fifth less CPU.
fn baseline_engine() -> Result<wasmtime::Engine> {
    let mut config = Config::new();
    config
        .strategy(Strategy::Winch)
        .cranelift_opt_level(OptLevel::None)
        .wasm_component_model(true)
        .epoch_interruption(true);
    wasmtime::Engine::new(&config).map_err(|source| Error::Engine {
        what: "cannot configure Wasmtime's baseline compiler",
        source,
    })
}

/// A shared handle to the Wasmtime engine and its compile cache.
#[derive(Clone)]
pub struct Engine(Arc<EngineInner>);

struct EngineInner {
    /// Cranelift: the code every component ends up on.
    inner: wasmtime::Engine,
    /// Winch, and the size above which a component starts on its code.
    baseline: Option<(wasmtime::Engine, usize)>,
    cache: Option<CompileCache>,
    /// The code each digest runs on now, of either tier.
    loaded: Shared<String, Code>,
    /// Cranelift's code for digests that started on baseline code, made once per digest.
    optimizing: Shared<String, Code>,
    /// Whether workloads on baseline code move to Cranelift's.
    tiers_up: bool,
    max_instances: u32,
    max_instance_memory: u64,
    /// Set when the host shuts down: a compile that ends afterwards is not cached.
    closing: AtomicBool,
    _ticker: EpochTicker,
}

/// A component's native code and what it imports and exports: one per digest in the host,
/// however many workloads run it.
pub struct Code {
    /// The compiled component.
    pub component: Component,
    /// What it imports and exports.
    pub info: Arc<ComponentInfo>,
    /// Which compiler made it.
    pub tier: Tier,
}

/// Which compiler made a component's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Winch: made fast, runs slower; replaced once Cranelift's code is ready.
    Baseline,
    /// Cranelift.
    Optimized,
}

/// Where [`Engine::compile`] found a component's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeSource {
    /// Already loaded for another workload.
    Memory,
    /// The on-disk cache.
    Disk,
    /// Compiled now by Cranelift.
    Compiler,
    /// Compiled now by the baseline compiler; with [`Compiler::Tiered`], Cranelift's code
    /// follows (see [`Engine::optimize`]).
    Baseline,
}

impl CodeSource {
    /// The name metrics and logs use: `memory`, `cache` or `compiler`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Disk => "cache",
            Self::Compiler => "compiler",
            Self::Baseline => "baseline",
        }
    }
}

/// A component compiled, or found compiled in memory or on disk.
#[derive(Clone)]
pub struct CompiledComponent {
    /// The native code, shared by every workload running this digest.
    pub code: Arc<Code>,
    /// Where the code came from.
    pub source: CodeSource,
    /// How long finding or compiling it took.
    pub compile_time: Duration,
}

impl CompiledComponent {
    /// Whether the compiler was spared.
    pub fn from_cache(&self) -> bool {
        self.source != CodeSource::Compiler
    }
}

impl Engine {
    /// An engine with the defaults: no compile cache, [`EngineBuilder::DEFAULT_MAX_INSTANCES`].
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The Wasmtime engine underneath, for plugins that compile or type-check.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.0.inner
    }

    /// Where compiled components are cached, if anywhere.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.0.cache.as_ref().map(CompileCache::root)
    }

    /// Whether workloads on baseline code move to Cranelift's ([`Compiler::Tiered`]).
    pub fn tiers_up(&self) -> bool {
        self.0.tiers_up
    }

    /// Component instances alive at once across the host.
    pub fn max_instances(&self) -> u32 {
        self.0.max_instances
    }

    /// The most memory one instance may have.
    pub fn max_instance_memory(&self) -> u64 {
        self.0.max_instance_memory
    }

    /// The host is shutting down: compiles still running are not cached.
    pub fn close(&self) {
        self.0.closing.store(true, Ordering::Relaxed);
    }

    /// Compiles a component, or finds it compiled: loaded for another workload, or in the
    /// on-disk cache when these exact bytes were compiled before by a compatible engine.
    /// Concurrent calls for one digest compile it once. A large component not found compiled
    /// gets baseline code ([`Tier::Baseline`]); [`Engine::optimize`] makes the final code.
    pub fn compile(&self, name: &str, wasm: &[u8]) -> Result<CompiledComponent> {
        check_is_component(name, wasm)?;
        let digest = crate::digest::sha256(wasm);
        let start = Instant::now();
        let mut source = CodeSource::Memory;
        let (code, _) = self.0.loaded.get_or_make(&digest, || {
            if let Some(component) = self.load_cached(&digest) {
                source = CodeSource::Disk;
                return Ok(code(component, digest.clone(), Tier::Optimized));
            }
            if let Some(component) = self.compile_baseline(name, wasm) {
                source = CodeSource::Baseline;
                return Ok(code(component, digest.clone(), Tier::Baseline));
            }
            source = CodeSource::Compiler;
            let component = self.compile_optimized(name, wasm, &digest)?;
            Ok::<_, Error>(code(component, digest.clone(), Tier::Optimized))
        })?;
        Ok(CompiledComponent {
            code,
            source,
            compile_time: start.elapsed(),
        })
    }

    /// Cranelift's code for a component, whatever [`Engine::compile`] gave: from memory, from
    /// the on-disk cache, or compiled now (once per digest however many callers wait). It then
    /// is what `compile` gives for these bytes. Blocks for as long as Cranelift takes.
    pub fn optimize(&self, name: &str, wasm: &[u8]) -> Result<CompiledComponent> {
        check_is_component(name, wasm)?;
        let digest = crate::digest::sha256(wasm);
        let start = Instant::now();
        if let Some(code) = self.0.loaded.get(&digest)
            && code.tier == Tier::Optimized
        {
            return Ok(CompiledComponent {
                code,
                source: CodeSource::Memory,
                compile_time: start.elapsed(),
            });
        }
        let mut source = CodeSource::Memory;
        let (code, _) = self.0.optimizing.get_or_make(&digest, || {
            let component = match self.load_cached(&digest) {
                Some(component) => {
                    source = CodeSource::Disk;
                    component
                }
                None => {
                    source = CodeSource::Compiler;
                    self.compile_optimized(name, wasm, &digest)?
                }
            };
            Ok::<_, Error>(code(component, digest.clone(), Tier::Optimized))
        })?;
        self.0.loaded.replace(&digest, &code);
        Ok(CompiledComponent {
            code,
            source,
            compile_time: start.elapsed(),
        })
    }

    /// Winch's code, for a component large enough to be worth it. A component Winch cannot
    /// compile (a proposal it lacks) is left to Cranelift.
    fn compile_baseline(&self, name: &str, wasm: &[u8]) -> Option<Component> {
        let (engine, above) = self.0.baseline.as_ref()?;
        if wasm.len() <= *above {
            return None;
        }
        Component::new(engine, wasm)
            .inspect_err(|err| {
                tracing::info!(component = name, err = %format!("{err:#}"), "the baseline compiler cannot compile it; compiling with Cranelift");
            })
            .ok()
    }

    /// Cranelift's code for `digest` from the on-disk cache, if this host wrote it there.
    fn load_cached(&self, digest: &str) -> Option<Component> {
        self.0.cache.as_ref()?.load(&self.0.inner, digest)
    }

    /// Compiles with Cranelift and stores the code in the on-disk cache.
    fn compile_optimized(&self, name: &str, wasm: &[u8], digest: &str) -> Result<Component> {
        let component = Component::new(&self.0.inner, wasm).map_err(|source| Error::Compile {
            component: name.to_string(),
            source,
        })?;
        if let Some(cache) = &self.0.cache
            && !self.0.closing.load(Ordering::Relaxed)
        {
            // A cache that cannot be written costs time on the next start, nothing more.
            if let Err(err) = cache.store(&component, digest) {
                tracing::warn!(%err, component = name, "could not write the compile cache");
            }
        }
        Ok(component)
    }
}

fn code(component: Component, digest: String, tier: Tier) -> Code {
    let info = ComponentInfo::read(component.engine(), &component, digest);
    Code {
        component,
        info: Arc::new(info),
        tier,
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

/// Advances the engines' epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engines: Vec<wasmtime::Engine>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    engines.iter().for_each(wasmtime::Engine::increment_epoch);
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
