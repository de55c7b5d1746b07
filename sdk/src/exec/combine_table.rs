//! The table that combines values by key on both sides of `reduce_by_key` (and folds them into
//! accumulators on the map side of `aggregate_by_key`).
//!
//! Design choice: each entry keeps its key's 64-bit hash beside it. When the table grows, entries
//! are placed again by their stored hash without reading their keys (for a `String` key, a jump
//! to a heap block that is usually no longer in cache); a lookup compares stored hashes before
//! keys; and the map side takes each key's shuffle bucket from the same hash instead of hashing
//! the key again. The price is 8 bytes per distinct key.

use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};

/// The hash that both picks a key's shuffle bucket and places it in a [`CombineTable`]: FxHash,
/// deterministic, so every instance of a module agrees on it.
pub(crate) fn hash_of<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// Values combined per key, with each key's hash stored.
pub(crate) struct CombineTable<K, V> {
    table: HashTable<(u64, K, V)>,
}

impl<K: Hash + Eq, V> CombineTable<K, V> {
    pub(crate) fn new() -> Self {
        CombineTable { table: HashTable::new() }
    }

    /// Fold `value` into the entry of `key` with `f`, or start one.
    pub(crate) fn combine<F: Fn(V, V) -> V>(&mut self, key: K, value: V, f: &F) {
        self.fold(key, value, |v| v, f);
    }

    /// Fold `value` into the entry of `key` with `f`, or start the entry with `start(value)`: the
    /// map side of `aggregate_by_key`, whose values and accumulators differ in type.
    pub(crate) fn fold<W, F: Fn(V, W) -> V>(
        &mut self,
        key: K,
        value: W,
        start: impl FnOnce(W) -> V,
        f: &F,
    ) {
        let hash = hash_of(&key);
        match self.table.find_mut(hash, |e| e.0 == hash && e.1 == key) {
            Some(entry) => {
                // Move the old value out to combine it by value, then put the result back. If
                // `f` unwound, the slot would be dropped twice, so an unwind aborts instead
                // (guests are built with panic=abort anyway).
                struct AbortOnUnwind;
                impl Drop for AbortOnUnwind {
                    fn drop(&mut self) {
                        std::process::abort();
                    }
                }
                let slot = &mut entry.2;
                let guard = AbortOnUnwind;
                // SAFETY: `slot` is re-initialised by `write` before it can be observed, and the
                // guard rules out observing it after an unwind.
                unsafe {
                    let old = std::ptr::read(slot);
                    std::ptr::write(slot, f(old, value));
                }
                std::mem::forget(guard);
            }
            None => {
                self.table.insert_unique(hash, (hash, key, start(value)), |e| e.0);
            }
        }
    }

    /// Distinct keys so far.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Every entry: hash, key, combined value.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (u64, K, V)> {
        self.table.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn combines_like_a_hash_map_through_growth() {
        let mut table = CombineTable::new();
        let mut expected: HashMap<String, u64> = HashMap::new();
        for i in 0..50_000u64 {
            let key = format!("key {}", (i * 7919) % 12_345);
            *expected.entry(key.clone()).or_default() += i;
            table.combine(key, i, &|a, b| a + b);
        }
        assert_eq!(table.len(), expected.len());
        for (hash, key, value) in table.into_entries() {
            assert_eq!(hash, hash_of(&key));
            assert_eq!(expected.remove(&key), Some(value), "{key}");
        }
        assert!(expected.is_empty());
    }

    #[test]
    fn folds_values_of_another_type_from_a_start() {
        // Distinct values per key, as `aggregate_by_key` with a set accumulator does.
        let mut table = CombineTable::new();
        for (k, v) in [("a", 1), ("b", 2), ("a", 1), ("a", 3), ("b", 2)] {
            table.fold(
                k,
                v,
                |v| std::collections::BTreeSet::from([v]),
                &|mut set: std::collections::BTreeSet<u32>, v| {
                    set.insert(v);
                    set
                },
            );
        }
        let mut got: Vec<_> = table.into_entries().map(|(_, k, set)| (k, set)).collect();
        got.sort();
        assert_eq!(got, [("a", [1, 3].into()), ("b", [2].into())]);
    }
}
