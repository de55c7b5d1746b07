//! Task execution inside the guest: turns a [`GuestTask`](crate::abi::GuestTask) into a
//! pull-based iterator pipeline and drives it to the sink.
//!
//! Design choice: one stage's narrow operators are fused into boxed iterators, built once per
//! task from the task's steps (sources, operators, and merges of several streams). Between steps
//! the record type is erased ([`Erased`]), so the host can assemble any pipeline from
//! function-table indices; per record the cost is one virtual `next()` call per step and no
//! serialisation. Records are (de)serialised only where they cross the boundary: input batches,
//! emitted batches.
//!
//! Errors that happen inside an iterator (a bad CSV row, an undecodable batch) cannot be returned
//! through `Iterator::next`; they are parked in a per-instance slot ([`set_error`]) and the
//! iterator ends, and the runner reports the parked error instead of success.

mod byte_scan;
mod combine_table;
mod csv_columns;
mod csv_row_de;
mod csv_source;
mod line_cut;
pub(crate) mod merges;
pub(crate) mod ops;
pub(crate) mod sampling;
pub(crate) mod shuffle;
pub(crate) mod sinks;
pub(crate) mod sources;
pub(crate) mod udf_ops;
pub(crate) use combine_table::hash_of;
pub(crate) use csv_source::csv_rows;

use crate::plan::{Call, FnRef};
use crate::{Error, Result};
use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};

/// A boxed iterator of records of some type, with the type erased.
pub(crate) struct Erased(Box<dyn Any>);

/// The concrete iterator type behind [`Erased`].
pub(crate) type Iter<T> = Box<dyn Iterator<Item = T>>;

impl Erased {
    pub(crate) fn new<T: 'static>(iter: Iter<T>) -> Erased {
        Erased(Box::new(iter))
    }

    /// Recover the iterator; fails if the plan wired operators of mismatched types.
    pub(crate) fn into_iter<T: 'static>(self) -> Result<Iter<T>> {
        self.0.downcast::<Iter<T>>().map(|b| *b).map_err(|_| {
            Error::Codec(format!(
                "operator input type mismatch: expected records of type {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// Creates an iterator over records decoded from the task's inputs (by input index).
pub(crate) type SourceFn = fn(inputs: &[u32], arg: &[u8], op: u32) -> Result<Erased>;
/// Wraps an iterator with a narrow operator.
pub(crate) type OpFn = fn(input: Erased, arg: &[u8], op: u32) -> Result<Erased>;
/// Combines several iterators into one.
pub(crate) type MergeFn = fn(inputs: Vec<Erased>, arg: &[u8], op: u32) -> Result<Erased>;
/// Drains the pipeline and emits the task's output.
pub(crate) type SinkFn = fn(input: Erased, arg: &[u8], op: u32, buckets: u32) -> Result<()>;

/// Name a trampoline by its function-table index.
pub(crate) fn fn_ref_source(f: SourceFn) -> FnRef {
    FnRef(f as usize as u32)
}
pub(crate) fn fn_ref_op(f: OpFn) -> FnRef {
    FnRef(f as usize as u32)
}
pub(crate) fn fn_ref_sink(f: SinkFn) -> FnRef {
    FnRef(f as usize as u32)
}
pub(crate) fn fn_ref_merge(f: MergeFn) -> FnRef {
    FnRef(f as usize as u32)
}

/// The running task's partition within its stage.
static TASK_PARTITION: AtomicU32 = AtomicU32::new(0);

/// The running task's partition (seeds of `sample`, offsets of `zip_with_index`…).
pub(crate) fn task_partition() -> u32 {
    TASK_PARTITION.load(Ordering::Relaxed)
}

/// Whether this instance runs a task (not the driver).
static IN_TASK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this instance runs a task (accumulators add to the task's updates there).
pub(crate) fn in_task() -> bool {
    IN_TASK.load(Ordering::Relaxed)
}

/// Index of the operator whose user code is running; read by the host after a trap.
static CURRENT_OP: AtomicU32 = AtomicU32::new(0);

/// Record that user code of operator `op` is about to run (one plain store in wasm).
#[inline(always)]
pub(crate) fn set_op(op: u32) {
    CURRENT_OP.store(op, Ordering::Relaxed);
}

thread_local! {
    static PARKED_ERROR: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Park an error raised inside an iterator; the first one wins.
pub(crate) fn set_error(error: Error) {
    PARKED_ERROR.with(|slot| {
        slot.borrow_mut().get_or_insert(error);
    });
}

#[cfg(any(target_arch = "wasm32", test))]
/// Fail with the parked error, if any.
pub(crate) fn check_error() -> Result<()> {
    match PARKED_ERROR.with(|slot| slot.borrow_mut().take()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Decode a `Call` argument, naming the call on failure.
pub(crate) fn decode_arg<T: serde::de::DeserializeOwned>(arg: &[u8], what: &str) -> Result<T> {
    rmp_serde::from_slice(arg).map_err(|e| Error::Codec(format!("bad argument for {what}: {e}")))
}

#[cfg(target_arch = "wasm32")]
/// Run one task: build the pipeline, drain it into the sink.
pub(crate) fn run_task(task: &crate::abi::GuestTask) -> Result<()> {
    use crate::abi::GuestStep;
    crate::host::task_started(CURRENT_OP.as_ptr());
    TASK_PARTITION.store(task.partition, Ordering::Relaxed);
    IN_TASK.store(true, Ordering::Relaxed);
    crate::accumulators::task_started();
    set_op(0);
    let mut streams: Vec<Option<Erased>> = Vec::with_capacity(task.steps.len());
    // A step's records go to exactly one later step.
    let take = |streams: &mut Vec<Option<Erased>>, from: u32| {
        streams
            .get_mut(from as usize)
            .and_then(Option::take)
            .ok_or_else(|| Error::Codec(format!("the task's step {from} is missing or read twice")))
    };
    // SAFETY (all four kinds): the indices come from the plan built by this same module, where
    // they were taken from functions of exactly these types. A wrong index cannot break the
    // sandbox: wasm's `call_indirect` checks the signature and traps on a mismatch.
    for (i, step) in task.steps.iter().enumerate() {
        let op = i as u32;
        let records = match step {
            GuestStep::Source { call, inputs } => {
                let source: SourceFn = unsafe { to_fn(call.func) };
                source(inputs, &call.arg, op)?
            }
            GuestStep::Op { call, from } => {
                let input = take(&mut streams, *from)?;
                let op_fn: OpFn = unsafe { to_fn(call.func) };
                op_fn(input, &call.arg, op)?
            }
            GuestStep::Merge { call, from } => {
                let inputs = from.iter().map(|&f| take(&mut streams, f)).collect::<Result<_>>()?;
                let merge: MergeFn = unsafe { to_fn(call.func) };
                merge(inputs, &call.arg, op)?
            }
        };
        streams.push(Some(records));
    }
    let last =
        streams.len().checked_sub(1).ok_or_else(|| Error::Codec("a task without steps".into()));
    let records = take(&mut streams, last? as u32)?;
    let sink: SinkFn = unsafe { to_fn(task.sink.func) };
    sink(records, &task.sink.arg, task.steps.len() as u32, task.buckets)?;
    check_error()?;
    let updates = crate::accumulators::take_task_updates();
    if !updates.is_empty() {
        crate::host::accumulate(&rmp_serde::to_vec(&updates)?);
    }
    Ok(())
}

#[cfg(target_arch = "wasm32")]
/// Turn a function-table index back into a function pointer.
///
/// # Safety
/// `r` must have been produced from a function of type `F` in this module.
unsafe fn to_fn<F: Copy>(r: FnRef) -> F {
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
    let addr = r.0 as usize;
    // SAFETY: forwarded to the caller.
    unsafe { std::mem::transmute_copy::<usize, F>(&addr) }
}

/// The label used for `Call`s: operator name and the user's source location.
pub(crate) fn label(op: &str, at: &std::panic::Location<'_>) -> String {
    format!("{op} at {}:{}:{}", at.file(), at.line(), at.column())
}

/// Build a [`Call`].
pub(crate) fn call(label: String, func: FnRef, arg: Vec<u8>) -> Call {
    Call { label, func, arg }
}

/// Send panic messages to the host before the guest traps, so the host can report them with the
/// operator that panicked.
#[cfg(target_arch = "wasm32")]
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_string()
        };
        let full = match info.location() {
            Some(at) => format!("{message} (at {}:{}:{})", at.file(), at.line(), at.column()),
            None => message,
        };
        crate::host::panic_message(&full);
    }));
}

#[cfg(target_arch = "wasm32")]
mod exports {
    use super::*;

    /// Export: reserve `len` bytes for the host to write into. The memory is owned by whoever
    /// the host passes the pointer to next (`weft_run_task` takes it back).
    #[unsafe(no_mangle)]
    pub extern "C" fn weft_alloc(len: usize) -> *mut u8 {
        let mut buf = Vec::<u8>::with_capacity(len.max(1));
        let ptr = buf.as_mut_ptr();
        std::mem::forget(buf);
        ptr
    }

    /// Export: run the MessagePack-encoded [`GuestTask`] at `ptr`.
    #[unsafe(no_mangle)]
    pub extern "C" fn weft_run_task(ptr: *mut u8, len: usize) -> i32 {
        install_panic_hook();
        // SAFETY: the host allocated this buffer with `weft_alloc(len)` and filled it.
        let bytes = unsafe { Vec::from_raw_parts(ptr, len, len.max(1)) };
        let outcome = rmp_serde::from_slice::<crate::abi::GuestTask>(&bytes)
            .map_err(|e| Error::Codec(format!("cannot decode the task: {e}")))
            .and_then(|task| run_task(&task));
        match outcome {
            Ok(()) => crate::abi::STATUS_OK,
            Err(e) => {
                crate::host::fail(&e.to_string());
                crate::abi::STATUS_FAILED
            }
        }
    }
}
