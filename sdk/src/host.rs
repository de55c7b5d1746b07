//! Thin, safe wrappers around the host functions a Weft module imports (see [`crate::abi`]).
//!
//! On `wasm32` these call into the host. Built for any other target (so that plan types and the
//! API type-check natively, e.g. in an IDE), actions report [`Error::NotInSandbox`] and the task
//! functions are unreachable: tasks only ever start through the wasm export `weft_run_task`.

use crate::Error;

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "weft")]
    unsafe extern "C" {
        pub fn input_next(input: u32) -> i64;
        pub fn input_read(input: u32, ptr: *mut u8);
        pub fn emit(channel: i32, ptr: *const u8, len: usize);
        pub fn task_started(op_cell: *const u32);
        pub fn fail(ptr: *const u8, len: usize);
        pub fn panic(ptr: *const u8, len: usize);
        pub fn bad_rows(count: i64, ptr: *const u8, len: usize);
        pub fn accumulate(ptr: *const u8, len: usize);
        pub fn broadcast_len(id: i64) -> i64;
        pub fn broadcast_read(id: i64, ptr: *mut u8);
        pub fn run_action(ptr: *const u8, len: usize) -> i64;
        pub fn reply_read(ptr: *mut u8);
        pub fn udf_bind(ptr: *const u8, len: usize) -> i64;
        pub fn udf_call(slot: u32, function: u32, format: u32, ptr: *const u8, len: usize) -> i64;
        pub fn udf_read(ptr: *mut u8);
    }
}

/// Fetch the next batch of the running task's input number `input`, or `None` at its end.
#[cfg(target_arch = "wasm32")]
pub(crate) fn input_next(input: u32) -> Option<Vec<u8>> {
    // SAFETY: the host writes exactly the announced number of bytes into our buffer.
    unsafe {
        let len = imports::input_next(input);
        if len < 0 {
            return None;
        }
        let mut buf = Vec::<u8>::with_capacity(len as usize);
        imports::input_read(input, buf.as_mut_ptr());
        buf.set_len(len as usize);
        Some(buf)
    }
}

/// Hand an output batch to the host.
#[cfg(target_arch = "wasm32")]
pub(crate) fn emit(channel: u32, bytes: &[u8]) {
    // SAFETY: pointer and length describe a live slice.
    unsafe { imports::emit(channel as i32, bytes.as_ptr(), bytes.len()) }
}

/// Tell the host where the current-operator cell lives.
#[cfg(target_arch = "wasm32")]
pub(crate) fn task_started(op_cell: *const u32) {
    // SAFETY: the cell is a static that lives as long as the instance.
    unsafe { imports::task_started(op_cell) }
}

/// Report why the task is failing.
#[cfg(target_arch = "wasm32")]
pub(crate) fn fail(message: &str) {
    // SAFETY: pointer and length describe a live str.
    unsafe { imports::fail(message.as_ptr(), message.len()) }
}

/// Report a panic message; the guest traps right after.
#[cfg(target_arch = "wasm32")]
pub(crate) fn panic_message(message: &str) {
    // SAFETY: pointer and length describe a live str.
    unsafe { imports::panic(message.as_ptr(), message.len()) }
}

/// Report rows a lenient CSV source skipped.
#[cfg(target_arch = "wasm32")]
pub(crate) fn bad_rows(count: u64, first_error: &str) {
    // SAFETY: pointer and length describe a live str.
    unsafe { imports::bad_rows(count as i64, first_error.as_ptr(), first_error.len()) }
}

/// Report the task's accumulator updates.
#[cfg(target_arch = "wasm32")]
pub(crate) fn accumulate(updates: &[u8]) {
    // SAFETY: pointer and length describe a live slice.
    unsafe { imports::accumulate(updates.as_ptr(), updates.len()) }
}

/// The bytes of broadcast value `id`, if the task has it.
#[cfg(target_arch = "wasm32")]
pub(crate) fn broadcast(id: u64) -> Option<Vec<u8>> {
    // SAFETY: the host writes exactly the announced number of bytes into our buffer.
    unsafe {
        let len = imports::broadcast_len(id as i64);
        if len < 0 {
            return None;
        }
        let mut buf = Vec::<u8>::with_capacity(len as usize);
        imports::broadcast_read(id as i64, buf.as_mut_ptr());
        buf.set_len(len as usize);
        Some(buf)
    }
}

/// Ask the host to run an action; returns the encoded reply.
#[cfg(target_arch = "wasm32")]
pub(crate) fn run_action(request: &[u8]) -> Result<Vec<u8>, Error> {
    // SAFETY: the host writes exactly the announced number of bytes into our buffer.
    unsafe {
        let len = imports::run_action(request.as_ptr(), request.len());
        if len < 0 {
            return Err(Error::Job("the host could not read the action request".into()));
        }
        let mut buf = Vec::<u8>::with_capacity(len as usize);
        imports::reply_read(buf.as_mut_ptr());
        buf.set_len(len as usize);
        Ok(buf)
    }
}

/// Ask the host to bind a UDF; returns the encoded answer.
#[cfg(target_arch = "wasm32")]
pub(crate) fn udf_bind(lookup: &[u8]) -> Result<Vec<u8>, Error> {
    // SAFETY: the host writes exactly the announced number of bytes into our buffer.
    unsafe {
        let len = imports::udf_bind(lookup.as_ptr(), lookup.len());
        if len < 0 {
            return Err(Error::Udf("the host could not read the UDF lookup".into()));
        }
        let mut buf = Vec::<u8>::with_capacity(len as usize);
        imports::reply_read(buf.as_mut_ptr());
        buf.set_len(len as usize);
        Ok(buf)
    }
}

/// Run a bound UDF over a batch encoded in `format`; returns its encoded answer. A UDF that
/// fails stops the task (the host reports why), so this returns only answers.
#[cfg(target_arch = "wasm32")]
pub(crate) fn udf_call(slot: u32, function: u32, format: u32, batch: &[u8]) -> Vec<u8> {
    // SAFETY: the host writes exactly the announced number of bytes into our buffer.
    unsafe {
        let len = imports::udf_call(slot, function, format, batch.as_ptr(), batch.len()) as usize;
        let mut buf = Vec::<u8>::with_capacity(len);
        imports::udf_read(buf.as_mut_ptr());
        buf.set_len(len);
        buf
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::Error;

    const OUTSIDE: &str = "Weft task functions only run inside a Weft sandbox (build the job for \
                           wasm32-wasip1 and start it with `weft run`)";

    pub(crate) fn input_next(_input: u32) -> Option<Vec<u8>> {
        unreachable!("{OUTSIDE}")
    }
    pub(crate) fn emit(_channel: u32, _bytes: &[u8]) {
        unreachable!("{OUTSIDE}")
    }
    pub(crate) fn bad_rows(_count: u64, _first_error: &str) {
        unreachable!("{OUTSIDE}")
    }
    pub(crate) fn run_action(_request: &[u8]) -> Result<Vec<u8>, Error> {
        Err(Error::NotInSandbox)
    }
    pub(crate) fn broadcast(_id: u64) -> Option<Vec<u8>> {
        None
    }
    pub(crate) fn udf_bind(_lookup: &[u8]) -> Result<Vec<u8>, Error> {
        Err(Error::NotInSandbox)
    }
    pub(crate) fn udf_call(_slot: u32, _function: u32, _format: u32, _batch: &[u8]) -> Vec<u8> {
        unreachable!("{OUTSIDE}")
    }
}
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::*;
