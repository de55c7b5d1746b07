//! Both sides of a hash shuffle of `(K, V)` records.
//!
//! Map side: records are assigned to bucket `hash(K) % buckets` and emitted on that bucket's
//! channel as MessagePack `Vec<(K, V)>` batches. `reduce_by_key` first combines values per key
//! within the partition (Spark's map-side combine), so a bucket carries each key at most once.
//! Reduce side: the host feeds every map task's batches for one bucket; they are merged by key.
//!
//! The hash is FxHash of the key's `Hash` impl. It only has to agree between instances of the
//! same module, which it does: it is deterministic and compiled into the module.

use super::{Erased, Iter, set_op, sources::batches};
use crate::record::conjure;
use crate::{Key, Record, Result};
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};

/// Records per emitted shuffle batch.
const SHUFFLE_BATCH: usize = 4096;

fn bucket_of<K: Hash>(key: &K, buckets: u32) -> usize {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    (h.finish() % buckets.max(1) as u64) as usize
}

/// Per-bucket buffers that emit a batch whenever one fills up.
struct Buckets<K, V> {
    buffers: Vec<Vec<(K, V)>>,
}

impl<K: Key, V: Record> Buckets<K, V> {
    fn new(buckets: u32) -> Self {
        Buckets { buffers: (0..buckets.max(1)).map(|_| Vec::new()).collect() }
    }

    fn push(&mut self, key: K, value: V) -> Result<()> {
        let b = bucket_of(&key, self.buffers.len() as u32);
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
            self.buffers[b].clear();
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

/// Fold `value` into `map` under `key` with `f`.
fn combine_into<K: Key, V, F: Fn(V, V) -> V>(map: &mut FxHashMap<K, V>, key: K, value: V, f: &F) {
    match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut e) => {
            // Move the old value out to combine it by value, then put the result back. If `f`
            // unwound, `slot` would be dropped twice, so an unwind aborts instead (guests are
            // built with panic=abort anyway).
            struct AbortOnUnwind;
            impl Drop for AbortOnUnwind {
                fn drop(&mut self) {
                    std::process::abort();
                }
            }
            let slot = e.get_mut();
            let guard = AbortOnUnwind;
            // SAFETY: `slot` is re-initialised by `write` before it can be observed, and the
            // guard rules out observing it after an unwind.
            unsafe {
                let old = std::ptr::read(slot);
                std::ptr::write(slot, f(old, value));
            }
            std::mem::forget(guard);
        }
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(value);
        }
    }
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
    let mut combined = FxHashMap::<K, V>::default();
    for (k, v) in input.into_iter::<(K, V)>()? {
        set_op(op);
        combine_into(&mut combined, k, v, &f);
    }
    let mut out = Buckets::<K, V>::new(buckets);
    for (k, v) in combined {
        out.push(k, v)?;
    }
    out.finish()
}

/// Reduce side of `reduce_by_key`: merge the fetched batches by key with `F`.
pub(crate) fn read_reduced<K: Key, V: Record, F: Fn(V, V) -> V + 'static>(
    _arg: &[u8],
    op: u32,
) -> Result<Erased> {
    // SAFETY: checked zero-sized by `reduce_by_key`.
    let f: F = unsafe { conjure() };
    let mut merged = FxHashMap::<K, V>::default();
    for (k, v) in batches::<(K, V)>() {
        set_op(op);
        combine_into(&mut merged, k, v, &f);
    }
    let it: Iter<(K, V)> = Box::new(merged.into_iter());
    Ok(Erased::new(it))
}

/// Reduce side of `group_by_key`: all values of each key.
pub(crate) fn read_grouped<K: Key, V: Record>(_arg: &[u8], _op: u32) -> Result<Erased> {
    let mut groups = FxHashMap::<K, Vec<V>>::default();
    for (k, v) in batches::<(K, V)>() {
        groups.entry(k).or_default().push(v);
    }
    let it: Iter<(K, Vec<V>)> = Box::new(groups.into_iter());
    Ok(Erased::new(it))
}
