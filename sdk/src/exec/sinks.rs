//! Sinks of actions whose output goes back to the driver or into text files.
//!
//! Output is emitted in batches of [`BATCH_RECORDS`] records (or [`TEXT_BATCH_BYTES`] of text), so
//! the boundary is crossed a few times per megabyte, never per record.

use super::{Erased, decode_arg, set_op};
use crate::record::conjure;
use crate::{Record, Result};
use std::fmt::Display;
use std::io::Write;

/// Records per emitted batch.
pub(crate) const BATCH_RECORDS: usize = 4096;
/// Bytes of text per emitted batch.
pub(crate) const TEXT_BATCH_BYTES: usize = 1 << 20;

fn emit_records<T: Record>(records: &[T]) -> Result<()> {
    let bytes = rmp_serde::to_vec(records)?;
    crate::host::emit(0, &bytes);
    Ok(())
}

/// `collect`: every record, in MessagePack batches.
pub(crate) fn collect<T: Record>(input: Erased, _arg: &[u8], _op: u32, _b: u32) -> Result<()> {
    let mut batch = Vec::with_capacity(BATCH_RECORDS);
    for x in input.into_iter::<T>()? {
        batch.push(x);
        if batch.len() == BATCH_RECORDS {
            emit_records(&batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        emit_records(&batch)?;
    }
    Ok(())
}

/// `take(n)`: at most `n` records (the argument); stops pulling input once it has them.
pub(crate) fn take<T: Record>(input: Erased, arg: &[u8], _op: u32, _b: u32) -> Result<()> {
    let n: u64 = decode_arg(arg, "take")?;
    let records: Vec<T> = input.into_iter::<T>()?.take(n as usize).collect();
    emit_records(&records)
}

/// `count`: the number of records, as one MessagePack `u64`.
pub(crate) fn count<T: 'static>(input: Erased, _arg: &[u8], _op: u32, _b: u32) -> Result<()> {
    let n = input.into_iter::<T>()?.count() as u64;
    crate::host::emit(0, &rmp_serde::to_vec(&n)?);
    Ok(())
}

/// `reduce(f)`: the partition folded with `F`, as one MessagePack `Option<T>`.
pub(crate) fn reduce<T: Record, F: Fn(T, T) -> T + 'static>(
    input: Erased,
    _arg: &[u8],
    op: u32,
    _b: u32,
) -> Result<()> {
    // SAFETY: checked zero-sized by `Dataset::reduce`.
    let f: F = unsafe { conjure() };
    let folded = input.into_iter::<T>()?.reduce(|a, b| {
        set_op(op);
        f(a, b)
    });
    crate::host::emit(0, &rmp_serde::to_vec(&folded)?);
    Ok(())
}

/// `save_as_text_file`: one line per record (its `Display`), emitted as raw text.
pub(crate) fn text<T: Display + 'static>(
    input: Erased,
    _arg: &[u8],
    _op: u32,
    _b: u32,
) -> Result<()> {
    let mut buf = Vec::with_capacity(TEXT_BATCH_BYTES + 4096);
    for x in input.into_iter::<T>()? {
        writeln!(buf, "{x}").expect("writing to a Vec cannot fail");
        if buf.len() >= TEXT_BATCH_BYTES {
            crate::host::emit(0, &buf);
            buf.clear();
        }
    }
    if !buf.is_empty() {
        crate::host::emit(0, &buf);
    }
    Ok(())
}
