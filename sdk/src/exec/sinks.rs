//! Sinks of actions whose output goes back to the driver or into text files.
//!
//! Output is emitted in batches of [`BATCH_RECORDS`] records (or [`TEXT_BATCH_BYTES`] of text), so
//! the boundary is crossed a few times per megabyte, never per record.

use super::{Erased, decode_arg, set_op};
use crate::numbers::{Number, Summary};
use crate::record::conjure;
use crate::{Error, Record, Result};
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

/// `save_as_text_file`: one line per record (its `Display`), emitted as raw text. A `String`,
/// the usual record of a dataset about to be saved, is copied as it is: the same bytes as its
/// `Display`, without the formatting machinery, which was a tenth of a sort's reduce side.
pub(crate) fn text<T: Display + 'static>(
    input: Erased,
    _arg: &[u8],
    _op: u32,
    _b: u32,
) -> Result<()> {
    let mut buf = Vec::with_capacity(TEXT_BATCH_BYTES + 4096);
    for x in input.into_iter::<T>()? {
        match (&x as &dyn std::any::Any).downcast_ref::<String>() {
            Some(s) => {
                buf.extend_from_slice(s.as_bytes());
                buf.push(b'\n');
            }
            None => writeln!(buf, "{x}").expect("writing to a Vec cannot fail"),
        }
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

/// `fold(zero, f)`: the partition folded from the zero value in `arg`, as one MessagePack `T`.
pub(crate) fn fold<T: Record, F: Fn(T, T) -> T + 'static>(
    input: Erased,
    arg: &[u8],
    op: u32,
    _b: u32,
) -> Result<()> {
    let zero: T = decode_arg(arg, "fold")?;
    // SAFETY: checked zero-sized by `Dataset::fold`.
    let f: F = unsafe { conjure() };
    let folded = input.into_iter::<T>()?.fold(zero, |a, b| {
        set_op(op);
        f(a, b)
    });
    crate::host::emit(0, &rmp_serde::to_vec(&folded)?);
    Ok(())
}

/// `aggregate(zero, seq, comb)`: the partition folded with `S` from the zero value in `arg`.
pub(crate) fn aggregate<T: 'static, U: Record, S: Fn(U, T) -> U + 'static>(
    input: Erased,
    arg: &[u8],
    op: u32,
    _b: u32,
) -> Result<()> {
    let zero: U = decode_arg(arg, "aggregate")?;
    // SAFETY: checked zero-sized by `Dataset::aggregate`.
    let seq: S = unsafe { conjure() };
    let folded = input.into_iter::<T>()?.fold(zero, |a, b| {
        set_op(op);
        seq(a, b)
    });
    crate::host::emit(0, &rmp_serde::to_vec(&folded)?);
    Ok(())
}

/// `take_ordered(n)` and `top(n)`: the partition's `n` smallest (or, with `descending` in the
/// argument, largest) records, sorted, kept in a heap of `n` while the partition streams by.
pub(crate) fn take_ordered<T: Record + Ord>(
    input: Erased,
    arg: &[u8],
    _op: u32,
    _b: u32,
) -> Result<()> {
    let (n, descending): (u64, bool) = decode_arg(arg, "take_ordered")?;
    let records = input.into_iter::<T>()?;
    let best: Vec<T> = if descending {
        smallest(records.map(std::cmp::Reverse), n).into_iter().map(|r| r.0).collect()
    } else {
        smallest(records, n)
    };
    emit_records(&best)
}

/// The `n` smallest items, sorted.
pub(crate) fn smallest<T: Ord>(items: impl Iterator<Item = T>, n: u64) -> Vec<T> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n == 0 {
        return Vec::new();
    }
    let mut heap = std::collections::BinaryHeap::with_capacity(n.min(1 << 16) + 1);
    for x in items {
        if heap.len() < n {
            heap.push(x);
        } else if heap.peek().is_some_and(|top| x < *top) {
            heap.pop();
            heap.push(x);
        }
    }
    heap.into_sorted_vec()
}

/// `for_each(f)`: `F` on every record; nothing is emitted.
pub(crate) fn for_each<T: 'static, F: Fn(T) + 'static>(
    input: Erased,
    _arg: &[u8],
    op: u32,
    _b: u32,
) -> Result<()> {
    // SAFETY: checked zero-sized by `Dataset::for_each`.
    let f: F = unsafe { conjure() };
    for x in input.into_iter::<T>()? {
        set_op(op);
        f(x);
    }
    Ok(())
}

/// `for_each_with(value, f)`: `F` on every record with the shipped value.
pub(crate) fn for_each_with<V: Record, T: 'static, F: Fn(&V, T) + 'static>(
    input: Erased,
    arg: &[u8],
    op: u32,
    _b: u32,
) -> Result<()> {
    let value: V = decode_arg(arg, "for_each_with")?;
    // SAFETY: checked zero-sized by `Dataset::for_each_with`.
    let f: F = unsafe { conjure() };
    for x in input.into_iter::<T>()? {
        set_op(op);
        f(&value, x);
    }
    Ok(())
}

/// `sum`: the partition's sum in `T`, or a failure naming the overflow.
pub(crate) fn sum<T: Number>(input: Erased, _arg: &[u8], _op: u32, _b: u32) -> Result<()> {
    let mut total = T::ZERO;
    for x in input.into_iter::<T>()? {
        total = total.checked_plus(x).ok_or_else(|| {
            Error::Input(format!("the sum overflows {}", std::any::type_name::<T>()))
        })?;
    }
    crate::host::emit(0, &rmp_serde::to_vec(&total)?);
    Ok(())
}

/// `stats`, `mean`, `histogram`'s first pass: the partition's [`Summary`].
pub(crate) fn summary<T: Number>(input: Erased, _arg: &[u8], _op: u32, _b: u32) -> Result<()> {
    let mut s = Summary::default();
    for x in input.into_iter::<T>()? {
        s.add(x.to_f64());
    }
    crate::host::emit(0, &rmp_serde::to_vec(&s)?);
    Ok(())
}

/// `histogram`'s second pass: counts per evenly spaced bucket between the `min` and `max` of the
/// argument, the last bucket closed; values outside (or NaN) are not counted, as in Spark.
pub(crate) fn histogram<T: Number>(input: Erased, arg: &[u8], _op: u32, _b: u32) -> Result<()> {
    let (min, max, buckets): (f64, f64, u32) = decode_arg(arg, "histogram")?;
    let mut counts = vec![0u64; buckets.max(1) as usize];
    let last = counts.len() - 1;
    for x in input.into_iter::<T>()? {
        let x = x.to_f64();
        if x.is_nan() || x < min || x > max {
            continue;
        }
        let b =
            if max > min { ((x - min) / (max - min) * counts.len() as f64) as usize } else { 0 };
        counts[b.min(last)] += 1;
    }
    crate::host::emit(0, &rmp_serde::to_vec(&counts)?);
    Ok(())
}

/// `sort_by_key`'s first pass: how many records the partition has and a uniform sample of their
/// keys (of the size in the argument), as one MessagePack `(u64, Vec<K>)`.
pub(crate) fn key_sample<K: Record, V: 'static>(
    input: Erased,
    arg: &[u8],
    _op: u32,
    _b: u32,
) -> Result<()> {
    let (size, seed): (u64, u64) = decode_arg(arg, "sort_by_key")?;
    let keys = input.into_iter::<(K, V)>()?.map(|(k, _)| k);
    let sample = super::sampling::reservoir(keys, size as usize, seed);
    crate::host::emit(0, &rmp_serde::to_vec(&sample)?);
    Ok(())
}
