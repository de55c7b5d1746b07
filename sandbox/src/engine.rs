//! The shared wasmtime engine, its configuration, and the epoch ticker that enforces deadlines.
//!
//! Deadlines only fire while the engine's epoch advances, so the ticker thread must outlive every
//! store of the engine: it is owned jointly by the [`Engine`] and every
//! [`JobModule`](crate::JobModule) compiled with it, and stops when the last of them is dropped.

use crate::error::ModuleError;
use crate::module_cache::ModuleCache;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the engine's epoch advances; deadlines are measured in these ticks, so this is
/// their resolution. Checking an epoch costs a load and a compare at loop heads and calls.
pub const TICK: Duration = Duration::from_millis(10);

/// Limits applied to every sandbox of a job.
#[derive(Clone, Debug)]
pub struct SandboxPolicy {
    /// Wall-clock time a task may run (it does nothing but compute, so this bounds its CPU).
    pub task_timeout: Duration,
    /// Time the driver may spend running its own code; time spent waiting for actions is not
    /// counted.
    pub driver_timeout: Duration,
    /// Linear memory one instance may grow to, in bytes.
    pub memory_limit: u64,
    /// Bytes of stdout and of stderr kept per task; the rest is counted and dropped.
    pub output_cap: usize,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        SandboxPolicy {
            task_timeout: Duration::from_secs(600),
            driver_timeout: Duration::from_secs(600),
            memory_limit: 2048 << 20,
            output_cap: 64 << 10,
        }
    }
}

/// A wasmtime engine configured for Weft, shared by every module and sandbox of a process.
///
/// Its epoch ticker thread runs until the engine and every module compiled with it are dropped.
pub struct Engine {
    pub(crate) inner: wasmtime::Engine,
    pub(crate) module_cache: Option<ModuleCache>,
    pub(crate) ticker: Arc<Ticker>,
}

/// The thread that advances an engine's epoch every [`TICK`]; stopped when dropped.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    /// Build the engine and start its ticker.
    pub fn new() -> Result<Engine, ModuleError> {
        let mut config = wasmtime::Config::new();
        config
            .epoch_interruption(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed)
            .parallel_compilation(true)
            .memory_init_cow(true)
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool()));
        // `WEFT_PROFILE=perfmap` writes /tmp/perf-PID.map so that `perf report` can name the
        // guest's compiled functions (for profiling jobs; off by default, it costs a file write
        // per compiled function).
        if std::env::var_os("WEFT_PROFILE").is_some_and(|v| v == "perfmap") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let inner = wasmtime::Engine::new(&config)
            .map_err(|e| ModuleError::Engine(format!("cannot configure wasmtime: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = inner.clone();
        let ticker_stop = stop.clone();
        std::thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| ModuleError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Engine { inner, module_cache: None, ticker: Arc::new(Ticker { stop }) })
    }

    /// Keep compiled modules in `cache` and take them from there (see [`ModuleCache`]).
    pub fn with_module_cache(mut self, cache: ModuleCache) -> Engine {
        self.module_cache = Some(cache);
        self
    }
}

/// How much of a task's linear memory stays mapped for the next task in its slot.
const KEEP_RESIDENT: usize = 64 << 20;

/// How many idle slots keep their memory (the rest give it back to the kernel).
const WARM_SLOTS: u32 = 4;

/// The pooling instance allocator: a task's instance takes a pre-reserved slot, and when it ends
/// up to [`KEEP_RESIDENT`] bytes of its memory are zeroed in place rather than given back to the
/// kernel. Every task is a fresh instance, so without this each one takes a page fault for every
/// page of heap it touches (the web-log job touched about 1 GB of fresh pages in 17 tasks, 7% of
/// its time); with it, a slot's pages are faulted in once. The cost is resident memory: at most
/// [`WARM_SLOTS`] idle slots keep theirs, so a long-lived node holds at most
/// `WARM_SLOTS * KEEP_RESIDENT` (256 MiB) for tasks that are not running. The slot counts are
/// wasmtime's defaults (1000 concurrent instances, far more than workers and drivers); slots are
/// virtual address space reserved up front, not memory.
fn pool() -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.linear_memory_keep_resident(KEEP_RESIDENT).max_unused_warm_slots(WARM_SLOTS);
    pool
}

/// Number of epoch ticks that covers `d` (at least one).
pub(crate) fn ticks(d: Duration) -> u64 {
    (d.as_nanos() / TICK.as_nanos()).max(1) as u64 + 1
}
