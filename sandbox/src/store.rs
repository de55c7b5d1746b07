//! The per-store state of a sandbox and the limits enforced on it.
//!
//! A store is created per task (and one for the driver) and dropped when it finishes, so nothing
//! a guest does in one task is visible to another.

use crate::capture::CapturedOutput;
use crate::engine::{SandboxPolicy, ticks};
use crate::error::TaskError;
use crate::io::{BatchSource, OutputSink};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Linear memory used by the sandboxes of one task: the task's own and those of the UDFs it
/// calls, which are counted against the same limit.
#[derive(Clone, Default)]
pub(crate) struct MemoryBudget(Arc<AtomicUsize>);

/// Caps linear memory (and table) growth of every sandbox sharing a [`MemoryBudget`].
pub(crate) struct MemoryCap {
    limit: usize,
    used: MemoryBudget,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let more = desired.saturating_sub(current);
        let before = self.used.0.fetch_add(more, Ordering::Relaxed);
        if before.saturating_add(more) > self.limit {
            self.used.0.fetch_sub(more, Ordering::Relaxed);
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
    /// The UDF modules the task may call, and the sandboxes of those it called.
    pub(crate) udfs: crate::udf_host::UdfSandboxes,
}

/// Serves the driver's requests to the host: which kind, request bytes in, reply bytes out.
pub type ActionHandler = Box<dyn FnMut(DriverCall, &[u8]) -> Vec<u8> + Send>;

/// What the driver asks of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverCall {
    /// Run an action (`run_action`): an `ActionRequest` in, an `ActionReply` out.
    Action,
    /// Bind a UDF (`udf_bind`): a `UdfLookup` in, a `Result<UdfBinding, String>` out.
    BindUdf,
}

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
    /// A UDF module's sandbox; the label names the call that is running (for errors).
    Udf {
        label: String,
    },
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

/// A fresh store with the job's limits, WASI with nothing granted, and captured output; its
/// memory counts against `memory` (shared by a task and the UDFs it calls).
#[allow(clippy::too_many_arguments)]
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    policy: &SandboxPolicy,
    role: Role,
    args: &[String],
    stdout: &CapturedOutput,
    stderr: &CapturedOutput,
    deadline: Duration,
    memory: MemoryBudget,
) -> Store<SandboxState> {
    let wasi =
        WasiCtxBuilder::new().args(args).stdout(stdout.clone()).stderr(stderr.clone()).build_p1();
    let state = SandboxState {
        wasi,
        limiter: MemoryCap { limit: policy.memory_limit as usize, used: memory },
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
    // A host function's refusal (a bad pointer, a call the role may not make) says it all; a
    // trap of the guest's own keeps wasmtime's backtrace.
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(_) => format!("{error:#}"),
        None => error.root_cause().to_string(),
    };
    TaskError::Trap { operator, message }
}

/// The label of the operator whose code was running, read from the guest's cell.
fn current_operator(
    store: &mut Store<SandboxState>,
    memory: Option<wasmtime::Memory>,
) -> Option<String> {
    let data = memory.map_or(&[][..], |m| m.data(&*store));
    store.data().operator(data)
}

impl SandboxState {
    /// The label of the operator whose code is running, given the guest's memory.
    pub(crate) fn operator(&self, memory: &[u8]) -> Option<String> {
        let labels = match &self.role {
            Role::Task(io) => &io.labels,
            Role::Driver(_) => return Some("the driver (main)".into()),
            Role::Udf { label } => return Some(label.clone()),
        };
        let cell = self.op_cell? as usize;
        let bytes = memory.get(cell..cell.checked_add(4)?)?;
        let index = u32::from_le_bytes(bytes.try_into().ok()?);
        labels.get(index as usize).cloned()
    }
}
