//! Transformations of datasets of pairs `(K, V)` that combine values by key (each a shuffle
//! unless the dataset is already partitioned by key the same way), and the narrow ones on
//! values.

use crate::dataset::{NodeDef, encode_value};
use crate::exec::{
    self, fn_ref_merge, fn_ref_op, fn_ref_sink, fn_ref_source, label, merges, ops, shuffle, sources,
};
use crate::plan::{Call, NodeKind, ShuffleSide};
use crate::record::assert_shippable;
use crate::{Dataset, Key, Record};
use std::panic::Location;
use std::rc::Rc;

/// A shuffle node over `parents`, one side each, merged by `merge`.
pub(crate) fn shuffle_node<U: 'static>(
    parents: Vec<Rc<NodeDef>>,
    sides: Vec<ShuffleSide>,
    merge: Call,
    partitions: Option<u32>,
    hash_partitioned: bool,
) -> Dataset<U> {
    let kind = NodeKind::Shuffle { partitions, sides, merge, hash_partitioned };
    Dataset::from_node(NodeDef::new(parents, kind))
}

/// One side of a shuffle of records `R`: written by `write` (with `write_arg`), read back as
/// records of `R`, with `local` for a co-partitioned parent.
pub(crate) fn side<R: Record>(
    name: &str,
    write: exec::SinkFn,
    write_arg: Vec<u8>,
    local: Option<Call>,
) -> ShuffleSide {
    ShuffleSide {
        write: exec::call(format!("{name} (map side)"), fn_ref_sink(write), write_arg),
        read: exec::call(
            format!("{name} (reading the shuffle)"),
            fn_ref_source(sources::records::<R>),
            Vec::new(),
        ),
        local,
    }
}

impl<K: Key, V: Record> Dataset<(K, V)> {
    /// Merge the values of each key with `f`, which must be associative and commutative.
    ///
    /// Values are first combined within each partition, so only one record per key and partition
    /// crosses the shuffle. The number of output partitions is chosen by the engine; see
    /// [`reduce_by_key_into`](Self::reduce_by_key_into) to set it.
    #[track_caller]
    pub fn reduce_by_key<F: Fn(V, V) -> V + 'static>(&self, f: F) -> Dataset<(K, V)> {
        self.reduce_by_key_as(f, None, label("reduce_by_key", Location::caller()))
    }

    /// [`reduce_by_key`](Self::reduce_by_key) into exactly `partitions` output partitions.
    #[track_caller]
    pub fn reduce_by_key_into<F: Fn(V, V) -> V + 'static>(
        &self,
        f: F,
        partitions: u32,
    ) -> Dataset<(K, V)> {
        let name = label("reduce_by_key_into", Location::caller());
        self.reduce_by_key_as(f, Some(partitions.max(1)), name)
    }

    /// `reduce_by_key` under the label `name`.
    pub(crate) fn reduce_by_key_as<F: Fn(V, V) -> V + 'static>(
        &self,
        _f: F,
        partitions: Option<u32>,
        name: String,
    ) -> Dataset<(K, V)> {
        assert_shippable!(F);
        let side = side::<(K, V)>(&name, shuffle::write_combined::<K, V, F>, Vec::new(), None);
        let merge = exec::call(name, fn_ref_merge(merges::reduced::<K, V, F>), Vec::new());
        shuffle_node(vec![self.node.clone()], vec![side], merge, partitions, true)
    }

    /// Fold the values of each key into an accumulator of another type: Spark's
    /// `aggregateByKey`. `seq` adds a value to a key's accumulator, which starts as a copy of
    /// `zero`; `comb` merges two accumulators of the same key (built in different partitions)
    /// and must be associative and commutative.
    ///
    /// Like [`reduce_by_key`](Self::reduce_by_key), values are folded within each partition
    /// first, so one accumulator per key and partition crosses the shuffle. Unlike it, values
    /// need not be turned into accumulators one by one (a one-element set per value, say): `seq`
    /// adds each value to the accumulator in place. `zero` starts every key in every partition,
    /// so it must be neutral for `comb` (an empty set, a zero count). For the distinct values of
    /// each key, fold them into a set:
    ///
    /// ```
    /// # use weft::prelude::*;
    /// # use std::collections::BTreeSet;
    /// # fn f(visits: Dataset<(String, String)>) -> Dataset<(String, BTreeSet<String>)> {
    /// visits.aggregate_by_key(
    ///     BTreeSet::new(),
    ///     |mut hosts, host| {
    ///         hosts.insert(host);
    ///         hosts
    ///     },
    ///     |mut a, mut b| {
    ///         a.append(&mut b);
    ///         a
    ///     },
    /// )
    /// # }
    /// ```
    #[track_caller]
    pub fn aggregate_by_key<U, S, C>(&self, zero: U, _seq: S, _comb: C) -> Dataset<(K, U)>
    where
        U: Record + Clone,
        S: Fn(U, V) -> U + 'static,
        C: Fn(U, U) -> U + 'static,
    {
        assert_shippable!(S);
        assert_shippable!(C);
        self.aggregate_inner::<U, S, C>(zero, "aggregate_by_key", Location::caller())
    }

    /// Fold the values of each key with `f`, starting every key in every partition from a copy
    /// of `zero` (which must be neutral for `f`, like 0 for `+`): Spark's `foldByKey`.
    #[track_caller]
    pub fn fold_by_key<F: Fn(V, V) -> V + 'static>(&self, zero: V, _f: F) -> Dataset<(K, V)>
    where
        V: Clone,
    {
        assert_shippable!(F);
        self.aggregate_inner::<V, F, F>(zero, "fold_by_key", Location::caller())
    }

    fn aggregate_inner<U, S, C>(&self, zero: U, op: &str, at: &Location<'_>) -> Dataset<(K, U)>
    where
        U: Record + Clone,
        S: Fn(U, V) -> U + 'static,
        C: Fn(U, U) -> U + 'static,
    {
        let name = label(op, at);
        let zero = encode_value(&zero);
        let local = fn_ref_op(shuffle::aggregate_locally::<K, V, U, S>);
        let local = exec::call(format!("{name} (within partitions)"), local, zero.clone());
        let write = shuffle::write_aggregated::<K, V, U, S>;
        let side = side::<(K, U)>(&name, write, zero, Some(local));
        let merge = exec::call(name, fn_ref_merge(merges::reduced::<K, U, C>), Vec::new());
        shuffle_node(vec![self.node.clone()], vec![side], merge, None, true)
    }

    /// Spark's `combineByKey`: each key's first value in a partition becomes a combiner with
    /// `create`, the partition's other values are added to it with `merge_value`, and the
    /// combiners of different partitions are merged with `merge_combiners` (associative and
    /// commutative).
    #[track_caller]
    pub fn combine_by_key<C, Cr, Mv, Mc>(
        &self,
        _create: Cr,
        _merge_value: Mv,
        _merge_combiners: Mc,
    ) -> Dataset<(K, C)>
    where
        C: Record,
        Cr: Fn(V) -> C + 'static,
        Mv: Fn(C, V) -> C + 'static,
        Mc: Fn(C, C) -> C + 'static,
    {
        assert_shippable!(Cr);
        assert_shippable!(Mv);
        assert_shippable!(Mc);
        let name = label("combine_by_key", Location::caller());
        let local = fn_ref_op(shuffle::combine_locally::<K, V, C, Cr, Mv>);
        let local = exec::call(format!("{name} (within partitions)"), local, Vec::new());
        let write = shuffle::write_combined_by::<K, V, C, Cr, Mv>;
        let side = side::<(K, C)>(&name, write, Vec::new(), Some(local));
        let merge = exec::call(name, fn_ref_merge(merges::reduced::<K, C, Mc>), Vec::new());
        shuffle_node(vec![self.node.clone()], vec![side], merge, None, true)
    }

    /// Gather all values of each key into one `Vec` (order within a key is not defined).
    ///
    /// Every record crosses the shuffle; prefer [`reduce_by_key`](Self::reduce_by_key) when the
    /// values can be combined.
    #[track_caller]
    pub fn group_by_key(&self) -> Dataset<(K, Vec<V>)> {
        self.group_by_key_as(label("group_by_key", Location::caller()))
    }

    /// `group_by_key` under the label `name`.
    pub(crate) fn group_by_key_as(&self, name: String) -> Dataset<(K, Vec<V>)> {
        let side = side::<(K, V)>(&name, shuffle::write::<K, V>, Vec::new(), None);
        let merge = exec::call(name, fn_ref_merge(merges::grouped::<K, V>), Vec::new());
        shuffle_node(vec![self.node.clone()], vec![side], merge, None, true)
    }

    /// The same records in `partitions` partitions by the hash of their keys, the way
    /// `reduce_by_key_into` and the joins place them: joining two datasets partitioned alike
    /// moves neither again.
    #[track_caller]
    pub fn partition_by(&self, partitions: u32) -> Dataset<(K, V)> {
        let name = label("partition_by", Location::caller());
        let side = side::<(K, V)>(&name, shuffle::write::<K, V>, Vec::new(), None);
        let merge = exec::call(name, fn_ref_merge(merges::concat::<(K, V)>), Vec::new());
        shuffle_node(vec![self.node.clone()], vec![side], merge, Some(partitions.max(1)), true)
    }

    /// Apply `f` to every value, keeping keys (and so the partitioning).
    #[track_caller]
    pub fn map_values<W: 'static, F: Fn(V) -> W + 'static>(&self, _f: F) -> Dataset<(K, W)> {
        assert_shippable!(F);
        let func = fn_ref_op(ops::map_values::<K, V, W, F>);
        let call = exec::call(label("map_values", Location::caller()), func, Vec::new());
        self.narrow_keeping(call, true)
    }

    /// Replace every value by the items of the iterable `f` returns, each with the value's key.
    #[track_caller]
    pub fn flat_map_values<W, I, F>(&self, f: F) -> Dataset<(K, W)>
    where
        K: Clone,
        W: 'static,
        I: IntoIterator<Item = W> + 'static,
        F: Fn(V) -> I + 'static,
    {
        self.flat_map_values_as(f, label("flat_map_values", Location::caller()))
    }

    /// `flat_map_values` under the label `name`.
    pub(crate) fn flat_map_values_as<W, I, F>(&self, _f: F, name: String) -> Dataset<(K, W)>
    where
        K: Clone,
        W: 'static,
        I: IntoIterator<Item = W> + 'static,
        F: Fn(V) -> I + 'static,
    {
        assert_shippable!(F);
        let func = fn_ref_op(ops::flat_map_values::<K, V, W, I, F>);
        self.narrow_keeping(exec::call(name, func, Vec::new()), true)
    }

    /// The keys.
    #[track_caller]
    pub fn keys(&self) -> Dataset<K> {
        self.map_as(|(k, _): (K, V)| k, label("keys", Location::caller()))
    }

    /// The values.
    #[track_caller]
    pub fn values(&self) -> Dataset<V> {
        self.map_as(|(_, v): (K, V)| v, label("values", Location::caller()))
    }
}
