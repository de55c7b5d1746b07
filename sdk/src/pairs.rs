//! Transformations of datasets of pairs `(K, V)`: the ones that shuffle, and `map_values`.

use crate::dataset::{NodeDef, encode_value};
use crate::exec::{self, fn_ref_op, fn_ref_sink, fn_ref_source, label, ops, shuffle};
use crate::plan::{FnRef, NodeKind};
use crate::record::assert_shippable;
use crate::{Dataset, Key, Record};
use std::panic::Location;

impl<K: Key, V: Record> Dataset<(K, V)> {
    /// Merge the values of each key with `f`, which must be associative and commutative.
    ///
    /// Values are first combined within each partition, so only one record per key and partition
    /// crosses the shuffle. The number of output partitions is chosen by the engine; see
    /// [`reduce_by_key_into`](Self::reduce_by_key_into) to set it.
    #[track_caller]
    pub fn reduce_by_key<F: Fn(V, V) -> V + 'static>(&self, f: F) -> Dataset<(K, V)> {
        self.reduce_by_key_inner(f, None, Location::caller())
    }

    /// [`reduce_by_key`](Self::reduce_by_key) into exactly `partitions` output partitions.
    #[track_caller]
    pub fn reduce_by_key_into<F: Fn(V, V) -> V + 'static>(
        &self,
        f: F,
        partitions: u32,
    ) -> Dataset<(K, V)> {
        self.reduce_by_key_inner(f, Some(partitions.max(1)), Location::caller())
    }

    fn reduce_by_key_inner<F: Fn(V, V) -> V + 'static>(
        &self,
        _f: F,
        partitions: Option<u32>,
        at: &Location<'_>,
    ) -> Dataset<(K, V)> {
        assert_shippable!(F);
        let write = fn_ref_sink(shuffle::write_combined::<K, V, F>);
        let read = fn_ref_source(shuffle::read_reduced::<K, V, F>);
        self.shuffled(label("reduce_by_key", at), (write, Vec::new()), read, partitions)
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
        let name = label("aggregate_by_key", Location::caller());
        let write = fn_ref_sink(shuffle::write_aggregated::<K, V, U, S>);
        let read = fn_ref_source(shuffle::read_reduced::<K, U, C>);
        self.shuffled(name, (write, encode_value(&zero)), read, None)
    }

    /// Gather all values of each key into one `Vec` (order within a key is not defined).
    ///
    /// Every record crosses the shuffle; prefer [`reduce_by_key`](Self::reduce_by_key) when the
    /// values can be combined.
    #[track_caller]
    pub fn group_by_key(&self) -> Dataset<(K, Vec<V>)> {
        let name = label("group_by_key", Location::caller());
        let write = fn_ref_sink(shuffle::write::<K, V>);
        let read = fn_ref_source(shuffle::read_grouped::<K, V>);
        self.shuffled(name, (write, Vec::new()), read, None)
    }

    /// A shuffle of this dataset: `write` (a map-side sink and its argument) buckets each
    /// partition's records, `read` (a source) merges one bucket of every map task.
    fn shuffled<U: 'static>(
        &self,
        name: String,
        (write, write_arg): (FnRef, Vec<u8>),
        read: FnRef,
        partitions: Option<u32>,
    ) -> Dataset<U> {
        Dataset::from_node(NodeDef::new(
            vec![self.node.clone()],
            NodeKind::Shuffle {
                partitions,
                writes: vec![exec::call(format!("{name} (map side)"), write, write_arg)],
                read: exec::call(name, read, Vec::new()),
            },
        ))
    }

    /// Apply `f` to every value, keeping keys.
    #[track_caller]
    pub fn map_values<W: 'static, F: Fn(V) -> W + 'static>(&self, _f: F) -> Dataset<(K, W)> {
        assert_shippable!(F);
        let func = fn_ref_op(ops::map_values::<K, V, W, F>);
        self.narrow(exec::call(label("map_values", Location::caller()), func, Vec::new()))
    }
}
