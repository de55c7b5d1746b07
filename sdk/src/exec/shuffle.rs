//! The map side of shuffles: every way a task's records are put into buckets.
//!
//! Hash shuffles (`reduce_by_key`, `group_by_key`, `cogroup`, `partition_by`…) put a `(K, V)`
//! record into bucket `hash(K) % buckets` and emit each bucket's records on that bucket's channel
//! as MessagePack `Vec<(K, V)>` batches. `reduce_by_key`, `aggregate_by_key` and
//! `combine_by_key` first combine values per key within the partition (Spark's map-side
//! combine), so a bucket carries each key at most once. `sort_by_key` buckets by key range,
//! `repartition` deals records out in turn. The reduce sides are in [`super::merges`].
//!
//! The hash is FxHash of the key's `Hash` impl ([`hash_of`]). It only has to agree between
//! instances of the same module, which it does: it is deterministic and compiled into the module.
//! That is also what lets a hash-partitioned dataset be joined without a new shuffle: its
//! partition *p* holds exactly the keys of bucket *p*.

use super::combine_table::{CombineTable, hash_of};
use super::{Erased, decode_arg, set_op};
use crate::record::conjure;
use crate::{Key, Record, Result};

/// Records per emitted shuffle batch.
const SHUFFLE_BATCH: usize = 4096;

/// Per-bucket buffers that emit a batch whenever one fills up.
struct Buckets<R> {
    buffers: Vec<Vec<R>>,
    /// Forget records once emitted instead of dropping them (see [`Buckets::forgetting`]).
    forget_emitted: bool,
}

impl<R: Record> Buckets<R> {
    fn new(buckets: u32) -> Self {
        let buffers = (0..buckets.max(1)).map(|_| Vec::new()).collect();
        Buckets { buffers, forget_emitted: false }
    }

    /// Buckets that forget records once they are emitted, without freeing what they own.
    ///
    /// Each task runs in an instance of its own that is discarded when the task ends (the host
    /// creates a store per task), and all of its memory with it. Freeing a table's worth of keys
    /// one by one just before that is wasted work: a `String` key's heap block is usually no
    /// longer in cache, so every free is a cache miss (a sixth of the web-log job's time, when
    /// measured). Only for records that were all in memory anyway (a combined table being
    /// emitted), so the instance's peak memory does not grow.
    fn forgetting(mut self) -> Self {
        self.forget_emitted = true;
        self
    }

    fn count(&self) -> usize {
        self.buffers.len()
    }

    /// Put `record` into bucket `b` (less than [`count`](Self::count)).
    fn push(&mut self, b: usize, record: R) -> Result<()> {
        self.buffers[b].push(record);
        if self.buffers[b].len() >= SHUFFLE_BATCH {
            self.flush(b)?;
        }
        Ok(())
    }

    /// Put a record whose key hashes to `hash` into its hash bucket.
    fn push_hashed(&mut self, hash: u64, record: R) -> Result<()> {
        let b = (hash % self.buffers.len() as u64) as usize;
        self.push(b, record)
    }

    fn flush(&mut self, b: usize) -> Result<()> {
        if !self.buffers[b].is_empty() {
            let bytes = rmp_serde::to_vec(&self.buffers[b])?;
            crate::host::emit(b as u32, &bytes);
            if self.forget_emitted {
                self.buffers[b].drain(..).for_each(std::mem::forget);
            } else {
                self.buffers[b].clear();
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        (0..self.buffers.len()).try_for_each(|b| self.flush(b))
    }
}

/// Map side of `group_by_key`, `cogroup` and `partition_by`: bucket records by key as they come.
pub(crate) fn write<K: Key, V: Record>(
    input: Erased,
    _arg: &[u8],
    _op: u32,
    buckets: u32,
) -> Result<()> {
    let mut out = Buckets::<(K, V)>::new(buckets);
    for (k, v) in input.into_iter::<(K, V)>()? {
        out.push_hashed(hash_of(&k), (k, v))?;
    }
    out.finish()
}

/// Map side of `reduce_by_key`: combine per key within the partition, then bucket.
pub(crate) fn write_combined<K: Key, V: Record, F: Fn(V, V) -> V + 'static>(
    input: Erased,
    _arg: &[u8],
    op: u32,
    buckets: u32,
) -> Result<()> {
    // SAFETY: checked zero-sized by `reduce_by_key`.
    let f: F = unsafe { conjure() };
    let mut combined = CombineTable::<K, V>::new();
    for (k, v) in input.into_iter::<(K, V)>()? {
        set_op(op);
        combined.combine(k, v, &f);
    }
    emit_table(combined, buckets)
}

/// Fold a partition's values per key: each key's first value becomes `start(v)`, later ones are
/// added with `add`. The map-side combine of `aggregate_by_key` and `combine_by_key`.
fn fold_partition<K: Key, V: Record, U>(
    input: Erased,
    op: u32,
    start: impl Fn(V) -> U,
    add: impl Fn(U, V) -> U,
) -> Result<CombineTable<K, U>> {
    let mut folded = CombineTable::<K, U>::new();
    for (k, v) in input.into_iter::<(K, V)>()? {
        set_op(op);
        folded.fold(k, v, &start, &add);
    }
    Ok(folded)
}

/// Map side of `aggregate_by_key`: fold each key's values into an accumulator started from the
/// zero value in `arg`, within the partition, then bucket.
pub(crate) fn write_aggregated<K, V, U, S>(
    input: Erased,
    arg: &[u8],
    op: u32,
    buckets: u32,
) -> Result<()>
where
    K: Key,
    V: Record,
    U: Record + Clone,
    S: Fn(U, V) -> U + 'static,
{
    emit_table(aggregate_table::<K, V, U, S>(input, arg, op)?, buckets)
}

fn aggregate_table<K, V, U, S>(input: Erased, arg: &[u8], op: u32) -> Result<CombineTable<K, U>>
where
    K: Key,
    V: Record,
    U: Record + Clone,
    S: Fn(U, V) -> U + 'static,
{
    let zero: U = decode_arg(arg, "aggregate_by_key")?;
    // SAFETY: checked zero-sized by `aggregate_by_key`.
    let seq: S = unsafe { conjure() };
    fold_partition(input, op, |v| seq(zero.clone(), v), &seq)
}

/// `aggregate_by_key`'s map-side fold as a narrow operator, for a parent already partitioned
/// like the shuffle (nothing moves, the reduce side merges what this gives).
pub(crate) fn aggregate_locally<K, V, U, S>(input: Erased, arg: &[u8], op: u32) -> Result<Erased>
where
    K: Key,
    V: Record,
    U: Record + Clone,
    S: Fn(U, V) -> U + 'static,
{
    let table = aggregate_table::<K, V, U, S>(input, arg, op)?;
    Ok(Erased::new::<(K, U)>(Box::new(table.into_entries().map(|(_, k, u)| (k, u)))))
}

fn combine_by_table<K, V, C, Cr, Mv>(input: Erased, op: u32) -> Result<CombineTable<K, C>>
where
    K: Key,
    V: Record,
    Cr: Fn(V) -> C + 'static,
    Mv: Fn(C, V) -> C + 'static,
{
    // SAFETY: both checked zero-sized by `combine_by_key`.
    let (create, merge_value): (Cr, Mv) = unsafe { (conjure(), conjure()) };
    fold_partition(input, op, create, merge_value)
}

/// Map side of `combine_by_key`: start a combiner from each key's first value with `Cr`, add the
/// others with `Mv`, within the partition, then bucket.
pub(crate) fn write_combined_by<K, V, C, Cr, Mv>(
    input: Erased,
    _arg: &[u8],
    op: u32,
    buckets: u32,
) -> Result<()>
where
    K: Key,
    V: Record,
    C: Record,
    Cr: Fn(V) -> C + 'static,
    Mv: Fn(C, V) -> C + 'static,
{
    emit_table(combine_by_table::<K, V, C, Cr, Mv>(input, op)?, buckets)
}

/// `combine_by_key`'s map side as a narrow operator (see [`aggregate_locally`]).
pub(crate) fn combine_locally<K, V, C, Cr, Mv>(
    input: Erased,
    _arg: &[u8],
    op: u32,
) -> Result<Erased>
where
    K: Key,
    V: Record,
    C: Record,
    Cr: Fn(V) -> C + 'static,
    Mv: Fn(C, V) -> C + 'static,
{
    let table = combine_by_table::<K, V, C, Cr, Mv>(input, op)?;
    Ok(Erased::new::<(K, C)>(Box::new(table.into_entries().map(|(_, k, c)| (k, c)))))
}

/// Emit a combined table's entries to their buckets, forgetting them (see
/// [`Buckets::forgetting`]).
fn emit_table<K: Key, V: Record>(table: CombineTable<K, V>, buckets: u32) -> Result<()> {
    let mut out = Buckets::<(K, V)>::new(buckets).forgetting();
    for (hash, k, v) in table.into_entries() {
        out.push_hashed(hash, (k, v))?;
    }
    out.finish()
}

/// Map side of `sort_by_key`: bucket by key range. The argument holds the range bounds (bucket
/// *i* takes the keys up to bound *i*, the last bucket the rest) and the direction.
pub(crate) fn write_ranges<K: Record + Ord, V: Record>(
    input: Erased,
    arg: &[u8],
    _op: u32,
    buckets: u32,
) -> Result<()> {
    let (bounds, ascending): (Vec<K>, bool) = decode_arg(arg, "sort_by_key")?;
    let mut out = Buckets::<(K, V)>::new(buckets);
    let last = out.count() - 1;
    for (k, v) in input.into_iter::<(K, V)>()? {
        let rank = bounds.partition_point(|b| *b < k).min(last);
        out.push(if ascending { rank } else { last - rank }, (k, v))?;
    }
    out.finish()
}

/// Map side of `repartition`: records dealt out to the buckets in turn, starting at a bucket
/// that depends on the partition (as Spark does), so that small partitions do not all start
/// filling bucket 0.
pub(crate) fn write_round_robin<T: Record>(
    input: Erased,
    _arg: &[u8],
    _op: u32,
    buckets: u32,
) -> Result<()> {
    let mut out = Buckets::<T>::new(buckets);
    let n = out.count();
    let mut b = (hash_of(&super::task_partition()) % n as u64) as usize;
    for x in input.into_iter::<T>()? {
        out.push(b, x)?;
        b = if b + 1 == n { 0 } else { b + 1 };
    }
    out.finish()
}
