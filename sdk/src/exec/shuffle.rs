//! Both sides of a hash shuffle of `(K, V)` records.
//!
//! Map side: records are assigned to bucket `hash(K) % buckets` and emitted on that bucket's
//! channel as MessagePack `Vec<(K, V)>` batches. `reduce_by_key` first combines values per key
//! within the partition (Spark's map-side combine), so a bucket carries each key at most once.
//! Reduce side: the host feeds every map task's batches for one bucket; they are merged by key.
//!
//! The hash is FxHash of the key's `Hash` impl ([`hash_of`]). It only has to agree between
//! instances of the same module, which it does: it is deterministic and compiled into the module.

use super::combine_table::{CombineTable, hash_of};
use super::{Erased, Iter, decode_arg, set_op, sources::batches};
use crate::record::conjure;
use crate::{Key, Record, Result};
use rustc_hash::FxHashMap;

/// Records per emitted shuffle batch.
const SHUFFLE_BATCH: usize = 4096;

/// Per-bucket buffers that emit a batch whenever one fills up.
struct Buckets<K, V> {
    buffers: Vec<Vec<(K, V)>>,
    /// Forget records once emitted instead of dropping them (see [`Buckets::forgetting`]).
    forget_emitted: bool,
}

impl<K: Key, V: Record> Buckets<K, V> {
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

    fn push(&mut self, key: K, value: V) -> Result<()> {
        self.push_hashed(hash_of(&key), key, value)
    }

    /// `push` for a key whose [`hash_of`] is known.
    fn push_hashed(&mut self, hash: u64, key: K, value: V) -> Result<()> {
        let b = (hash % self.buffers.len() as u64) as usize;
        self.buffers[b].push((key, value));
        if self.buffers[b].len() >= SHUFFLE_BATCH {
            self.flush(b)?;
        }
        Ok(())
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

/// Map side of `group_by_key`: bucket records as they come.
pub(crate) fn write<K: Key, V: Record>(
    input: Erased,
    _arg: &[u8],
    _op: u32,
    buckets: u32,
) -> Result<()> {
    let mut out = Buckets::<K, V>::new(buckets);
    for (k, v) in input.into_iter::<(K, V)>()? {
        out.push(k, v)?;
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
    let zero: U = decode_arg(arg, "aggregate_by_key")?;
    // SAFETY: checked zero-sized by `aggregate_by_key`.
    let seq: S = unsafe { conjure() };
    let mut folded = CombineTable::<K, U>::new();
    for (k, v) in input.into_iter::<(K, V)>()? {
        set_op(op);
        folded.fold(k, v, |v| seq(zero.clone(), v), &seq);
    }
    emit_table(folded, buckets)
}

/// Emit a combined table's entries to their buckets, forgetting them (see
/// [`Buckets::forgetting`]).
fn emit_table<K: Key, V: Record>(table: CombineTable<K, V>, buckets: u32) -> Result<()> {
    let mut out = Buckets::<K, V>::new(buckets).forgetting();
    for (hash, k, v) in table.into_entries() {
        out.push_hashed(hash, k, v)?;
    }
    out.finish()
}

/// Reduce side of `reduce_by_key` and `aggregate_by_key`: merge the fetched batches by key with
/// `F`.
pub(crate) fn read_reduced<K: Key, V: Record, F: Fn(V, V) -> V + 'static>(
    _arg: &[u8],
    op: u32,
) -> Result<Erased> {
    // SAFETY: checked zero-sized by `reduce_by_key`.
    let f: F = unsafe { conjure() };
    let mut merged = CombineTable::<K, V>::new();
    for (k, v) in batches::<(K, V)>(0) {
        set_op(op);
        merged.combine(k, v, &f);
    }
    let it: Iter<(K, V)> = Box::new(merged.into_entries().map(|(_, k, v)| (k, v)));
    Ok(Erased::new(it))
}

/// Reduce side of `group_by_key`: all values of each key.
pub(crate) fn read_grouped<K: Key, V: Record>(_arg: &[u8], _op: u32) -> Result<Erased> {
    let mut groups = FxHashMap::<K, Vec<V>>::default();
    for (k, v) in batches::<(K, V)>(0) {
        groups.entry(k).or_default().push(v);
    }
    let it: Iter<(K, Vec<V>)> = Box::new(groups.into_iter());
    Ok(Erased::new(it))
}
