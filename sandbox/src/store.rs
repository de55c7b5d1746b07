//! The per-store state of a sandbox and the limits enforced on it.
//!
//! A store is created per task (and one for the driver) and dropped when it finishes, so nothing
//! a guest does in one task is visible to another.

use crate::capture::CapturedOutput;
use crate::engine::{SandboxPolicy, ticks};
use crate::error::TaskError;
use crate::io::{BatchSource, OutputSink};
use bytes::Bytes;
use std::time::{Duration, Instant};
use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

/// Marker error returned by the limiter when the memory cap is hit; recognised after the trap.
#[derive(Debug)]
pub(crate) struct MemoryCapHit;

impl std::fmt::Display for MemoryCapHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("memory limit reached")
    }
}
impl std::error::Error for MemoryCapHit {}

/// Marker error for a host function that failed on the host's side (I/O); the message is kept in
/// [`SandboxState::host_error`].
#[derive(Debug)]
pub(crate) struct HostFailure;

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("host function failed")
    }
}
impl std::error::Error for HostFailure {}

/// Caps linear memory (and table) growth.
pub(crate) struct MemoryCap {
    limit: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(wasmtime::Error::new(MemoryCapHit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// What a task sandbox exchanges with the host.
pub(crate) struct TaskIo {
    /// The task's inputs, by input index.
    pub(crate) inputs: Vec<Box<dyn BatchSource>>,
    /// A batch announced by `input_next` and not read yet, with its input index.
    pub(crate) pending: Option<(u32, Bytes)>,
    /// The task's time limit (for a deadline reached while waiting for input).
    pub(crate) timeout: Duration,
    pub(crate) output: OutputSink,
    pub(crate) bad_rows: Option<(u64, String)>,
    /// Accumulator updates the task reported.
    pub(crate) accumulators: Vec<weft_abi::guest::AccumulatorUpdate>,
    /// The job's broadcast values, by id.
    pub(crate) broadcasts: std::collections::HashMap<u64, Bytes>,
    /// Operator labels by index (source, ops, sink), to name the one that failed.
    pub(crate) labels: Vec<String>,
}

/// Runs an action for the driver: request bytes in, reply bytes out.
pub type ActionHandler = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

/// What the driver sandbox exchanges with the host.
pub(crate) struct DriverIo {
    pub(crate) actions: ActionHandler,
    pub(crate) pending_reply: Option<Vec<u8>>,
    /// Guest CPU time left.
    pub(crate) budget: Duration,
    /// When the guest last resumed running its own code.
    pub(crate) resumed_at: Instant,
}

pub(crate) enum Role {
    Task(Box<TaskIo>),
    Driver(DriverIo),
}

/// The data of every sandbox's store.
pub(crate) struct SandboxState {
    pub(crate) wasi: WasiP1Ctx,
    limiter: MemoryCap,
    pub(crate) role: Role,
    /// Guest address of the current-operator cell, once the task announced it.
    pub(crate) op_cell: Option<u32>,
    pub(crate) panic_message: Option<String>,
    pub(crate) fail_message: Option<String>,
    pub(crate) host_error: Option<TaskError>,
}

/// A fresh store with the job's limits, WASI with nothing granted, and captured output.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    policy: &SandboxPolicy,
    role: Role,
    args: &[String],
    stdout: &CapturedOutput,
    stderr: &CapturedOutput,
    deadline: Duration,
) -> Store<SandboxState> {
    let wasi =
        WasiCtxBuilder::new().args(args).stdout(stdout.clone()).stderr(stderr.clone()).build_p1();
    let state = SandboxState {
        wasi,
        limiter: MemoryCap { limit: policy.memory_limit as usize },
        role,
        op_cell: None,
        panic_message: None,
        fail_message: None,
        host_error: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(ticks(deadline));
    store
}

/// Turn a failed call into the error users see, naming the operator that was running.
pub(crate) fn classify(
    error: wasmtime::Error,
    store: &mut Store<SandboxState>,
    memory: Option<wasmtime::Memory>,
    limit: Duration,
) -> TaskError {
    let operator = current_operator(store, memory);
    let state = store.data_mut();
    if error.is::<MemoryCapHit>() {
        return TaskError::MemoryLimit { limit_mib: state.limiter.limit as u64 >> 20, operator };
    }
    if let Some(host) = state.host_error.take() {
        return host;
    }
    if let Some(message) = state.panic_message.take() {
        return TaskError::Panic { operator, message };
    }
    if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
        return TaskError::DeadlineExceeded { limit, operator };
    }
    TaskError::Trap { operator, message: format!("{error:#}") }
}

/// The label of the operator whose code was running, read from the guest's cell.
fn current_operator(
    store: &mut Store<SandboxState>,
    memory: Option<wasmtime::Memory>,
) -> Option<String> {
    let labels = match &store.data().role {
        Role::Task(io) => io.labels.clone(),
        Role::Driver(_) => return Some("the driver (main)".into()),
    };
    let cell = store.data().op_cell?;
    let mut buf = [0u8; 4];
    memory?.read(&*store, cell as usize, &mut buf).ok()?;
    labels.get(u32::from_le_bytes(buf) as usize).cloned()
}
