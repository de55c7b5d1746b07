//! Narrow operators: monomorphised trampolines that wrap the incoming iterator with a user closure.
//!
//! Each trampoline re-creates its closure from the closure's type ([`conjure`]) and, for the
//! `*_with` variants, decodes the shipped value once per task. Before user code runs, the
//! operator's index is stored in the current-operator cell so that a trap or panic can name it.

use super::{Erased, Iter, decode_arg, set_op};
use crate::record::conjure;
use crate::{Record, Result};

/// `map`: `F(T) -> U`.
pub(crate) fn map<T: 'static, U: 'static, F: Fn(T) -> U + 'static>(
    input: Erased,
    _arg: &[u8],
    op: u32,
) -> Result<Erased> {
    // SAFETY: `Dataset::map` checked at compile time that `F` is zero-sized.
    let f: F = unsafe { conjure() };
    let it: Iter<U> = Box::new(input.into_iter::<T>()?.map(move |x| {
        set_op(op);
        f(x)
    }));
    Ok(Erased::new(it))
}

/// `map_with`: `F(&V, T) -> U` with the shipped value `V`.
pub(crate) fn map_with<V: Record, T: 'static, U: 'static, F: Fn(&V, T) -> U + 'static>(
    input: Erased,
    arg: &[u8],
    op: u32,
) -> Result<Erased> {
    let value: V = decode_arg(arg, "map_with")?;
    // SAFETY: `Dataset::map_with` checked at compile time that `F` is zero-sized.
    let f: F = unsafe { conjure() };
    let it: Iter<U> = Box::new(input.into_iter::<T>()?.map(move |x| {
        set_op(op);
        f(&value, x)
    }));
    Ok(Erased::new(it))
}

/// `filter`: keep records for which `F(&T)` is true.
pub(crate) fn filter<T: 'static, F: Fn(&T) -> bool + 'static>(
    input: Erased,
    _arg: &[u8],
    op: u32,
) -> Result<Erased> {
    // SAFETY: checked zero-sized by `Dataset::filter`.
    let f: F = unsafe { conjure() };
    let it: Iter<T> = Box::new(input.into_iter::<T>()?.filter(move |x| {
        set_op(op);
        f(x)
    }));
    Ok(Erased::new(it))
}

/// `filter_with`: keep records for which `F(&V, &T)` is true.
pub(crate) fn filter_with<V: Record, T: 'static, F: Fn(&V, &T) -> bool + 'static>(
    input: Erased,
    arg: &[u8],
    op: u32,
) -> Result<Erased> {
    let value: V = decode_arg(arg, "filter_with")?;
    // SAFETY: checked zero-sized by `Dataset::filter_with`.
    let f: F = unsafe { conjure() };
    let it: Iter<T> = Box::new(input.into_iter::<T>()?.filter(move |x| {
        set_op(op);
        f(&value, x)
    }));
    Ok(Erased::new(it))
}

/// `flat_map`: every item of `F(T)`.
pub(crate) fn flat_map<T, U, I, F>(input: Erased, _arg: &[u8], op: u32) -> Result<Erased>
where
    T: 'static,
    U: 'static,
    I: IntoIterator<Item = U> + 'static,
    F: Fn(T) -> I + 'static,
{
    // SAFETY: checked zero-sized by `Dataset::flat_map`.
    let f: F = unsafe { conjure() };
    let it: Iter<U> = Box::new(input.into_iter::<T>()?.flat_map(move |x| {
        set_op(op);
        f(x)
    }));
    Ok(Erased::new(it))
}

/// `flat_map_with`: every item of `F(&V, T)`.
pub(crate) fn flat_map_with<V, T, U, I, F>(input: Erased, arg: &[u8], op: u32) -> Result<Erased>
where
    V: Record,
    T: 'static,
    U: 'static,
    I: IntoIterator<Item = U> + 'static,
    F: Fn(&V, T) -> I + 'static,
{
    let value: V = decode_arg(arg, "flat_map_with")?;
    // SAFETY: checked zero-sized by `Dataset::flat_map_with`.
    let f: F = unsafe { conjure() };
    let it: Iter<U> = Box::new(input.into_iter::<T>()?.flat_map(move |x| {
        set_op(op);
        f(&value, x)
    }));
    Ok(Erased::new(it))
}

/// `map_partitions`: `F` turns the partition's iterator into an iterable of outputs.
pub(crate) fn map_partitions<T, U, I, F>(input: Erased, _arg: &[u8], op: u32) -> Result<Erased>
where
    T: 'static,
    U: 'static,
    I: IntoIterator<Item = U> + 'static,
    F: Fn(Box<dyn Iterator<Item = T>>) -> I + 'static,
{
    // SAFETY: checked zero-sized by `Dataset::map_partitions`.
    let f: F = unsafe { conjure() };
    let upstream = input.into_iter::<T>()?;
    set_op(op);
    let out = f(upstream).into_iter();
    // Pulling from `out` may run user code again: keep the operator cell pointing at us.
    let it: Iter<U> = Box::new(out.inspect(move |_| set_op(op)));
    Ok(Erased::new(it))
}

/// `key_by`: `(F(&T), T)`.
pub(crate) fn key_by<T: 'static, K: 'static, F: Fn(&T) -> K + 'static>(
    input: Erased,
    _arg: &[u8],
    op: u32,
) -> Result<Erased> {
    // SAFETY: checked zero-sized by `Dataset::key_by`.
    let f: F = unsafe { conjure() };
    let it: Iter<(K, T)> = Box::new(input.into_iter::<T>()?.map(move |x| {
        set_op(op);
        (f(&x), x)
    }));
    Ok(Erased::new(it))
}

/// `map_values`: `(K, F(V))`.
pub(crate) fn map_values<K: 'static, V: 'static, W: 'static, F: Fn(V) -> W + 'static>(
    input: Erased,
    _arg: &[u8],
    op: u32,
) -> Result<Erased> {
    // SAFETY: checked zero-sized by `Dataset::map_values`.
    let f: F = unsafe { conjure() };
    let it: Iter<(K, W)> = Box::new(input.into_iter::<(K, V)>()?.map(move |(k, v)| {
        set_op(op);
        (k, f(v))
    }));
    Ok(Erased::new(it))
}

/// `flat_map_values`: `(K, w)` for every `w` of `F(V)`.
pub(crate) fn flat_map_values<K, V, W, I, F>(input: Erased, _arg: &[u8], op: u32) -> Result<Erased>
where
    K: Clone + 'static,
    V: 'static,
    W: 'static,
    I: IntoIterator<Item = W> + 'static,
    F: Fn(V) -> I + 'static,
{
    // SAFETY: checked zero-sized by `Dataset::flat_map_values`.
    let f: F = unsafe { conjure() };
    let it: Iter<(K, W)> = Box::new(input.into_iter::<(K, V)>()?.flat_map(move |(k, v)| {
        set_op(op);
        f(v).into_iter().map(move |w| (k.clone(), w))
    }));
    Ok(Erased::new(it))
}

/// `zip_with_index`: each record with its index, counting from this partition's offset (the
/// argument holds every partition's, from a first pass that counted them).
pub(crate) fn zip_with_index<T: 'static>(input: Erased, arg: &[u8], _op: u32) -> Result<Erased> {
    let offsets: Vec<u64> = decode_arg(arg, "zip_with_index")?;
    let p = super::task_partition() as usize;
    let start = *offsets.get(p).ok_or_else(|| {
        crate::Error::Codec(format!(
            "zip_with_index counted {} partitions, but this is partition {p}: the input's \
             partitioning changed between the two passes",
            offsets.len()
        ))
    })?;
    let it: Iter<(T, u64)> = Box::new(input.into_iter::<T>()?.zip(start..));
    Ok(Erased::new(it))
}

/// The [`map`] trampoline of closure `f`: for operators the SDK builds from a closure of its own
/// (`keys`, `values`, `glom`…), which capture nothing.
pub(crate) fn map_ref<T: 'static, U: 'static, F: Fn(T) -> U + 'static>(
    _f: F,
) -> crate::plan::FnRef {
    crate::record::assert_shippable!(F);
    super::fn_ref_op(map::<T, U, F>)
}

/// The [`map_partitions`] trampoline of closure `f` (see [`map_ref`]).
pub(crate) fn map_partitions_ref<T, U, I, F>(_f: F) -> crate::plan::FnRef
where
    T: 'static,
    U: 'static,
    I: IntoIterator<Item = U> + 'static,
    F: Fn(Box<dyn Iterator<Item = T>>) -> I + 'static,
{
    crate::record::assert_shippable!(F);
    super::fn_ref_op(map_partitions::<T, U, I, F>)
}

/// The [`flat_map`] trampoline of closure `f` (see [`map_ref`]).
pub(crate) fn flat_map_ref<T, U, I, F>(_f: F) -> crate::plan::FnRef
where
    T: 'static,
    U: 'static,
    I: IntoIterator<Item = U> + 'static,
    F: Fn(T) -> I + 'static,
{
    crate::record::assert_shippable!(F);
    super::fn_ref_op(flat_map::<T, U, I, F>)
}

/// The [`filter_with`] trampoline of closure `f` (see [`map_ref`]).
pub(crate) fn filter_with_ref<V: Record, T: 'static, F: Fn(&V, &T) -> bool + 'static>(
    _f: F,
) -> crate::plan::FnRef {
    crate::record::assert_shippable!(F);
    super::fn_ref_op(filter_with::<V, T, F>)
}
