//! The `weft` host functions a module imports, and the linker that provides them with WASI.
//!
//! Every pointer and length coming from the guest is bounds-checked against its memory; a bad
//! one traps that sandbox only. Host-side failures (an unreadable input file, a full disk) are
//! recorded in the store as a [`TaskError`] and surface as a trap carrying [`HostFailure`].

use crate::engine::ticks;
use crate::error::TaskError;
use crate::io::InputError;
use crate::store::{DriverCall, DriverIo, HostFailure, Role, SandboxState, TaskIo};
use std::time::Instant;
use wasmtime::{AsContextMut, Caller, Engine, Linker, Memory};
use weft_abi::guest::*;
use weft_abi::udf::{IMPORT_UDF_BIND, IMPORT_UDF_CALL, IMPORT_UDF_READ};

/// Longest message (panic, failure) kept from a guest.
const MAX_MESSAGE: usize = 64 << 10;
/// Largest action request the driver may send.
const MAX_REQUEST: usize = weft_abi::limits::MAX_ACTION_REQUEST_BYTES;

/// A linker with WASI preview 1 and the `weft` functions.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<SandboxState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut SandboxState| &mut s.wasi)?;
    linker.func_wrap(IMPORT_MODULE, IMPORT_INPUT_NEXT, input_next)?;
    linker.func_wrap(IMPORT_MODULE, IMPORT_INPUT_READ, input_read)?;
    linker.func_wrap(IMPORT_MODULE, IMPORT_EMIT, emit)?;
    linker.func_wrap(
        IMPORT_MODULE,
        IMPORT_TASK_STARTED,
        |mut c: Caller<'_, SandboxState>, cell: u32| {
            c.data_mut().op_cell = Some(cell);
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        IMPORT_FAIL,
        |mut c: Caller<'_, SandboxState>, ptr: u32, len: u32| {
            let message = read_message(&mut c, ptr, len)?;
            c.data_mut().fail_message = Some(message);
            Ok(())
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        IMPORT_PANIC,
        |mut c: Caller<'_, SandboxState>, ptr: u32, len: u32| {
            let message = read_message(&mut c, ptr, len)?;
            c.data_mut().panic_message = Some(message);
            Ok(())
        },
    )?;
    linker.func_wrap(IMPORT_MODULE, IMPORT_BAD_ROWS, bad_rows)?;
    linker.func_wrap(IMPORT_MODULE, IMPORT_ACCUMULATE, accumulate)?;
    linker.func_wrap(
        IMPORT_MODULE,
        IMPORT_BROADCAST_LEN,
        |mut c: Caller<'_, SandboxState>, id: i64| -> wasmtime::Result<i64> {
            let io = task_io(c.data_mut(), IMPORT_BROADCAST_LEN)?;
            Ok(io.broadcasts.get(&(id as u64)).map_or(-1, |b| b.len() as i64))
        },
    )?;
    linker.func_wrap(IMPORT_MODULE, IMPORT_BROADCAST_READ, broadcast_read)?;
    linker.func_wrap(
        IMPORT_MODULE,
        IMPORT_RUN_ACTION,
        |c: Caller<'_, SandboxState>, ptr: u32, len: u32| {
            driver_request(c, DriverCall::Action, ptr, len)
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        IMPORT_UDF_BIND,
        |c: Caller<'_, SandboxState>, ptr: u32, len: u32| {
            driver_request(c, DriverCall::BindUdf, ptr, len)
        },
    )?;
    linker.func_wrap(IMPORT_MODULE, IMPORT_UDF_CALL, udf_call)?;
    linker.func_wrap(IMPORT_MODULE, IMPORT_UDF_READ, udf_read)?;
    linker.func_wrap(IMPORT_MODULE, IMPORT_REPLY_READ, reply_read)?;
    Ok(linker)
}

fn memory(caller: &mut Caller<'_, SandboxState>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(wasmtime::Extern::Memory(m)) => Ok(m),
        _ => wasmtime::bail!("the module exports no memory"),
    }
}

fn guest_bytes(data: &[u8], ptr: u32, len: u32) -> wasmtime::Result<&[u8]> {
    let start = ptr as usize;
    let end = start.checked_add(len as usize);
    match end.and_then(|end| data.get(start..end)) {
        Some(bytes) => Ok(bytes),
        None => wasmtime::bail!("guest passed an out-of-bounds buffer ({len} bytes at {ptr:#x})"),
    }
}

fn read_message(
    caller: &mut Caller<'_, SandboxState>,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<String> {
    let mem = memory(caller)?;
    let bytes = guest_bytes(mem.data(&*caller), ptr, len.min(MAX_MESSAGE as u32))?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn task_io<'a>(state: &'a mut SandboxState, function: &str) -> wasmtime::Result<&'a mut TaskIo> {
    match &mut state.role {
        Role::Task(io) => Ok(io),
        Role::Driver(_) => wasmtime::bail!("`{function}` is only available inside a task"),
        Role::Udf { .. } => wasmtime::bail!(
            "`{function}` is not available to a UDF: a UDF sees only the records it is given"
        ),
    }
}

fn driver_io<'a>(
    state: &'a mut SandboxState,
    function: &str,
) -> wasmtime::Result<&'a mut DriverIo> {
    match &mut state.role {
        Role::Driver(io) => Ok(io),
        Role::Task(_) => wasmtime::bail!(
            "`{function}`: actions can only run in the driver (`main`), not inside a closure"
        ),
        Role::Udf { .. } => wasmtime::bail!("`{function}` is not available to a UDF"),
    }
}

fn host_failure(state: &mut SandboxState, error: TaskError) -> wasmtime::Error {
    state.host_error = Some(error);
    wasmtime::Error::new(HostFailure)
}

fn input_next(mut caller: Caller<'_, SandboxState>, input: u32) -> wasmtime::Result<i64> {
    let state = caller.data_mut();
    let io = task_io(state, IMPORT_INPUT_NEXT)?;
    let count = io.inputs.len();
    let Some(source) = io.inputs.get_mut(input as usize) else {
        wasmtime::bail!("`input_next({input})`: the task has {count} input(s)");
    };
    match source.next_batch() {
        Ok(Some(batch)) => {
            let len = batch.len() as i64;
            io.pending = Some((input, batch));
            Ok(len)
        }
        Ok(None) => Ok(-1),
        Err(InputError::Read(message)) => Err(host_failure(state, TaskError::Input(message))),
        Err(InputError::Fetch { lost, message }) => {
            Err(host_failure(state, TaskError::Fetch { lost, message }))
        }
        Err(InputError::Deadline) => {
            let limit = io.timeout;
            Err(host_failure(state, TaskError::DeadlineExceeded { limit, operator: None }))
        }
    }
}

fn input_read(mut caller: Caller<'_, SandboxState>, input: u32, ptr: u32) -> wasmtime::Result<()> {
    let Some((announced, batch)) = task_io(caller.data_mut(), IMPORT_INPUT_READ)?.pending.take()
    else {
        wasmtime::bail!("`input_read` called without a batch announced by `input_next`");
    };
    if announced != input {
        wasmtime::bail!("`input_read({input})` after `input_next({announced})`");
    }
    let mem = memory(&mut caller)?;
    mem.write(&mut caller, ptr as usize, &batch)?;
    Ok(())
}

fn emit(
    mut caller: Caller<'_, SandboxState>,
    channel: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<()> {
    let mem = memory(&mut caller)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let bytes = guest_bytes(data, ptr, len)?;
    let io = task_io(state, IMPORT_EMIT)?;
    if let Err(e) = io.output.emit(channel, bytes) {
        return Err(host_failure(state, e));
    }
    Ok(())
}

fn bad_rows(
    mut caller: Caller<'_, SandboxState>,
    count: i64,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<()> {
    let message = read_message(&mut caller, ptr, len)?;
    let io = task_io(caller.data_mut(), IMPORT_BAD_ROWS)?;
    let entry = io.bad_rows.get_or_insert((0, message));
    entry.0 += count.max(0) as u64;
    Ok(())
}

fn accumulate(mut caller: Caller<'_, SandboxState>, ptr: u32, len: u32) -> wasmtime::Result<()> {
    // An update is about 20 bytes encoded: this bounds the bytes before they are decoded.
    if len as usize > MAX_ACCUMULATOR_UPDATES * 32 {
        wasmtime::bail!("accumulator updates of {len} bytes are more than a task may report");
    }
    let mem = memory(&mut caller)?;
    let bytes = guest_bytes(mem.data(&caller), ptr, len)?;
    let updates: Vec<AccumulatorUpdate> = rmp_serde::from_slice(bytes)
        .map_err(|e| wasmtime::format_err!("malformed accumulator updates: {e}"))?;
    if updates.len() > MAX_ACCUMULATOR_UPDATES {
        wasmtime::bail!(
            "{} accumulator updates are more than the {MAX_ACCUMULATOR_UPDATES} a task may report",
            updates.len()
        );
    }
    let io = task_io(caller.data_mut(), IMPORT_ACCUMULATE)?;
    weft_abi::guest::merge_updates(&mut io.accumulators, &updates);
    Ok(())
}

fn broadcast_read(mut caller: Caller<'_, SandboxState>, id: i64, ptr: u32) -> wasmtime::Result<()> {
    let bytes = task_io(caller.data_mut(), IMPORT_BROADCAST_READ)?
        .broadcasts
        .get(&(id as u64))
        .cloned()
        .ok_or_else(|| wasmtime::format_err!("the task has no broadcast {id}"))?;
    let mem = memory(&mut caller)?;
    let at = ptr as usize;
    let end = at.checked_add(bytes.len()).filter(|&e| e <= mem.data_size(&caller));
    if end.is_none() {
        wasmtime::bail!("broadcast_read: {} bytes at {ptr} are outside guest memory", bytes.len());
    }
    mem.data_mut(&mut caller)[at..at + bytes.len()].copy_from_slice(&bytes);
    Ok(())
}

/// `run_action` and `udf_bind`: hand the driver's request to the host and keep the reply for
/// `reply_read`.
fn driver_request(
    mut caller: Caller<'_, SandboxState>,
    kind: DriverCall,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<i64> {
    if len as usize > MAX_REQUEST {
        wasmtime::bail!(
            "action request of {len} bytes is larger than the {MAX_REQUEST} byte limit"
        );
    }
    let mem = memory(&mut caller)?;
    let request = guest_bytes(mem.data(&caller), ptr, len)?.to_vec();
    let name = match kind {
        DriverCall::Action => IMPORT_RUN_ACTION,
        DriverCall::BindUdf => IMPORT_UDF_BIND,
    };
    let io = driver_io(caller.data_mut(), name)?;
    // The driver's CPU budget only counts time spent in its own code: stop the clock while the
    // host works, and re-arm the epoch deadline with what is left when it returns.
    io.budget = io.budget.saturating_sub(io.resumed_at.elapsed());
    let reply = (io.actions)(kind, &request);
    let len = reply.len() as i64;
    io.pending_reply = Some(reply);
    io.resumed_at = Instant::now();
    let left = io.budget;
    caller.as_context_mut().set_epoch_deadline(ticks(left));
    Ok(len)
}

/// `udf_call`: run a bound UDF over the batch at `ptr`, in batch format `format`, in its own
/// sandbox.
fn udf_call(
    mut caller: Caller<'_, SandboxState>,
    slot: u32,
    function: u32,
    format: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<i64> {
    let mem = memory(&mut caller)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let batch = guest_bytes(data, ptr, len)?;
    let operator = state.operator(data);
    let called =
        task_io(state, IMPORT_UDF_CALL)?.udfs.call(slot, function, format, batch, operator);
    match called {
        Ok(len) => Ok(len as i64),
        Err(e) => Err(host_failure(state, e)),
    }
}

/// `udf_read`: copy the last UDF answer to `ptr`.
fn udf_read(mut caller: Caller<'_, SandboxState>, ptr: u32) -> wasmtime::Result<()> {
    let mem = memory(&mut caller)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let answer = &task_io(state, IMPORT_UDF_READ)?.udfs.answer;
    let at = ptr as usize;
    match at.checked_add(answer.len()).and_then(|end| data.get_mut(at..end)) {
        Some(target) => target.copy_from_slice(answer),
        None => {
            wasmtime::bail!("udf_read: {} bytes at {ptr:#x} are outside guest memory", answer.len())
        }
    }
    Ok(())
}

fn reply_read(mut caller: Caller<'_, SandboxState>, ptr: u32) -> wasmtime::Result<()> {
    let Some(reply) = driver_io(caller.data_mut(), IMPORT_REPLY_READ)?.pending_reply.take() else {
        wasmtime::bail!("`reply_read` called without a reply announced by `run_action`");
    };
    let mem = memory(&mut caller)?;
    mem.write(&mut caller, ptr as usize, &reply)?;
    Ok(())
}
