//! Joins of pair datasets by key: `cogroup`, the inner and outer joins, `subtract_by_key`.
//!
//! Design choice (Spark's): everything is a `cogroup` — one shuffle of both sides into the same
//! buckets, and each key's values of both sides gathered — followed by a narrow step that makes
//! the join's records from each key's two groups (the cross product for duplicate keys). When a
//! side is already partitioned by key into as many partitions (the output of `reduce_by_key`,
//! `partition_by`, another join), the coordinator reads it where it is instead of shuffling it
//! again.

use crate::exec::{self, fn_ref_merge, label, merges, shuffle};
use crate::pairs::{shuffle_node, side};
use crate::{Dataset, Key, Record};
use std::panic::Location;

/// Every pair of a value of `vs` and one of `ws`, made by `pair`: the records of one key of a
/// join.
fn cross<V, W, R>(vs: &[V], ws: &[W], pair: impl Fn(&V, &W) -> R) -> Vec<R> {
    let mut out = Vec::with_capacity(vs.len() * ws.len());
    for v in vs {
        out.extend(ws.iter().map(|w| pair(v, w)));
    }
    out
}

// The record types are the API's contract (Spark's shapes); naming them would hide them.
#[allow(clippy::type_complexity)]
impl<K: Key, V: Record> Dataset<(K, V)> {
    /// Every key of either dataset, with all its values in this one and all in `other` (an
    /// empty `Vec` for a side without the key).
    #[track_caller]
    pub fn cogroup<W: Record>(&self, other: &Dataset<(K, W)>) -> Dataset<(K, (Vec<V>, Vec<W>))> {
        self.cogroup_as(other, label("cogroup", Location::caller()))
    }

    /// `cogroup` under the label `name`.
    pub(crate) fn cogroup_as<W: Record>(
        &self,
        other: &Dataset<(K, W)>,
        name: String,
    ) -> Dataset<(K, (Vec<V>, Vec<W>))> {
        let left = side::<(K, V)>(&name, shuffle::write::<K, V>, Vec::new(), None);
        let right = side::<(K, W)>(&name, shuffle::write::<K, W>, Vec::new(), None);
        let merge = exec::call(name, fn_ref_merge(merges::cogrouped::<K, V, W>), Vec::new());
        shuffle_node(
            vec![self.node.clone(), other.node.clone()],
            vec![left, right],
            merge,
            None,
            true,
        )
    }

    /// Pairs of values with the same key in both datasets: `(k, (v, w))` for every `v` of `k`
    /// here and every `w` of `k` in `other`. Keys on one side only are left out.
    #[track_caller]
    pub fn join<W: Record + Clone>(&self, other: &Dataset<(K, W)>) -> Dataset<(K, (V, W))>
    where
        K: Clone,
        V: Clone,
    {
        let name = label("join", Location::caller());
        self.cogroup_as(other, name.clone()).flat_map_values_as(
            |(vs, ws): (Vec<V>, Vec<W>)| cross(&vs, &ws, |v, w| (v.clone(), w.clone())),
            name,
        )
    }

    /// Like [`join`](Self::join), keeping this dataset's keys that `other` lacks, with `None`.
    #[track_caller]
    pub fn left_outer_join<W: Record + Clone>(
        &self,
        other: &Dataset<(K, W)>,
    ) -> Dataset<(K, (V, Option<W>))>
    where
        K: Clone,
        V: Clone,
    {
        let name = label("left_outer_join", Location::caller());
        self.cogroup_as(other, name.clone()).flat_map_values_as(
            |(vs, ws): (Vec<V>, Vec<W>)| {
                if ws.is_empty() {
                    return vs.into_iter().map(|v| (v, None)).collect();
                }
                cross(&vs, &ws, |v, w| (v.clone(), Some(w.clone())))
            },
            name,
        )
    }

    /// Like [`join`](Self::join), keeping `other`'s keys that this dataset lacks, with `None`.
    #[track_caller]
    pub fn right_outer_join<W: Record + Clone>(
        &self,
        other: &Dataset<(K, W)>,
    ) -> Dataset<(K, (Option<V>, W))>
    where
        K: Clone,
        V: Clone,
    {
        let name = label("right_outer_join", Location::caller());
        self.cogroup_as(other, name.clone()).flat_map_values_as(
            |(vs, ws): (Vec<V>, Vec<W>)| {
                if vs.is_empty() {
                    return ws.into_iter().map(|w| (None, w)).collect();
                }
                cross(&vs, &ws, |v, w| (Some(v.clone()), w.clone()))
            },
            name,
        )
    }

    /// Like [`join`](Self::join), keeping the keys of either side that the other lacks, with
    /// `None` for the missing side.
    #[track_caller]
    pub fn full_outer_join<W: Record + Clone>(
        &self,
        other: &Dataset<(K, W)>,
    ) -> Dataset<(K, (Option<V>, Option<W>))>
    where
        K: Clone,
        V: Clone,
    {
        let name = label("full_outer_join", Location::caller());
        self.cogroup_as(other, name.clone()).flat_map_values_as(
            |(vs, ws): (Vec<V>, Vec<W>)| {
                if ws.is_empty() {
                    return vs.into_iter().map(|v| (Some(v), None)).collect();
                }
                if vs.is_empty() {
                    return ws.into_iter().map(|w| (None, Some(w))).collect();
                }
                cross(&vs, &ws, |v, w| (Some(v.clone()), Some(w.clone())))
            },
            name,
        )
    }

    /// The records whose key does not appear in `other` (all of their values kept).
    #[track_caller]
    pub fn subtract_by_key<W: Record>(&self, other: &Dataset<(K, W)>) -> Dataset<(K, V)>
    where
        K: Clone,
    {
        let name = label("subtract_by_key", Location::caller());
        self.cogroup_as(other, name.clone()).flat_map_values_as(
            |(vs, ws): (Vec<V>, Vec<W>)| if ws.is_empty() { vs } else { Vec::new() },
            name,
        )
    }
}
