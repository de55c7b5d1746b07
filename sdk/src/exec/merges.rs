//! Steps that combine several record streams into one: the reduce sides of shuffles (whose
//! streams are the fetched buckets of each parent, or a co-partitioned parent's own partition),
//! and the multi-parent narrow operators (`coalesce`'s concatenation, `cartesian`'s product).

use super::{Erased, Iter, decode_arg, set_op};
use crate::record::conjure;
use crate::{Error, Key, Record, Result};
use rustc_hash::FxHashMap;

use super::combine_table::CombineTable;

/// The streams a merge was given, which must be `n`.
fn exactly<const N: usize>(inputs: Vec<Erased>, what: &str) -> Result<[Erased; N]> {
    let got = inputs.len();
    inputs
        .try_into()
        .map_err(|_| Error::Codec(format!("{what} merges {N} streams, but was given {got}")))
}

/// Every stream's records, one stream after the other.
fn chained<T: 'static>(inputs: Vec<Erased>) -> Result<Iter<T>> {
    let streams = inputs.into_iter().map(Erased::into_iter::<T>).collect::<Result<Vec<_>>>()?;
    Ok(Box::new(streams.into_iter().flatten()))
}

/// `union` within a task, `coalesce`, and the reduce side of `partition_by`, `repartition`: the
/// streams' records one after the other.
pub(crate) fn concat<T: 'static>(inputs: Vec<Erased>, _arg: &[u8], _op: u32) -> Result<Erased> {
    Ok(Erased::new(chained::<T>(inputs)?))
}

/// Reduce side of `reduce_by_key`, `aggregate_by_key`, `combine_by_key`: merge the values of
/// each key with `F`.
pub(crate) fn reduced<K: Key, V: Record, F: Fn(V, V) -> V + 'static>(
    inputs: Vec<Erased>,
    _arg: &[u8],
    op: u32,
) -> Result<Erased> {
    // SAFETY: checked zero-sized by the operator that built this step.
    let f: F = unsafe { conjure() };
    let mut merged = CombineTable::<K, V>::new();
    for (k, v) in chained::<(K, V)>(inputs)? {
        set_op(op);
        merged.combine(k, v, &f);
    }
    let it: Iter<(K, V)> = Box::new(merged.into_entries().map(|(_, k, v)| (k, v)));
    Ok(Erased::new(it))
}

/// Reduce side of `group_by_key`: all values of each key.
pub(crate) fn grouped<K: Key, V: Record>(
    inputs: Vec<Erased>,
    _arg: &[u8],
    _op: u32,
) -> Result<Erased> {
    let mut groups = FxHashMap::<K, Vec<V>>::default();
    for (k, v) in chained::<(K, V)>(inputs)? {
        groups.entry(k).or_default().push(v);
    }
    let it: Iter<(K, Vec<V>)> = Box::new(groups.into_iter());
    Ok(Erased::new(it))
}

/// Reduce side of `cogroup`: every key of either side, with all its values on each side (an
/// empty `Vec` for a side without the key).
pub(crate) fn cogrouped<K: Key, V: Record, W: Record>(
    inputs: Vec<Erased>,
    _arg: &[u8],
    _op: u32,
) -> Result<Erased> {
    let [left, right] = exactly::<2>(inputs, "cogroup")?;
    let mut groups = FxHashMap::<K, (Vec<V>, Vec<W>)>::default();
    for (k, v) in left.into_iter::<(K, V)>()? {
        groups.entry(k).or_default().0.push(v);
    }
    for (k, w) in right.into_iter::<(K, W)>()? {
        groups.entry(k).or_default().1.push(w);
    }
    type Groups<K, V, W> = Iter<(K, (Vec<V>, Vec<W>))>;
    let it: Groups<K, V, W> = Box::new(groups.into_iter());
    Ok(Erased::new(it))
}

/// Reduce side of `sort_by_key`: the bucket's records sorted by key (the argument says which
/// way). Equal keys keep the order they arrived in.
pub(crate) fn sorted<K: Record + Ord, V: Record>(
    inputs: Vec<Erased>,
    arg: &[u8],
    _op: u32,
) -> Result<Erased> {
    let ascending: bool = decode_arg(arg, "sort_by_key")?;
    let mut all: Vec<(K, V)> = chained::<(K, V)>(inputs)?.collect();
    if ascending {
        all.sort_by(|a, b| a.0.cmp(&b.0));
    } else {
        all.sort_by(|a, b| b.0.cmp(&a.0));
    }
    Ok(Erased::new::<(K, V)>(Box::new(all.into_iter())))
}

/// `cartesian`: every record of the first stream paired with every record of the second (the
/// second is held in memory).
pub(crate) fn product<T: Record + Clone, U: Record + Clone>(
    inputs: Vec<Erased>,
    _arg: &[u8],
    _op: u32,
) -> Result<Erased> {
    let [left, right] = exactly::<2>(inputs, "cartesian")?;
    let right: std::rc::Rc<Vec<U>> = std::rc::Rc::new(right.into_iter::<U>()?.collect());
    let left = left.into_iter::<T>()?;
    let it: Iter<(T, U)> = Box::new(left.flat_map(move |x| {
        let right = right.clone();
        (0..right.len()).map(move |i| (x.clone(), right[i].clone()))
    }));
    Ok(Erased::new(it))
}
