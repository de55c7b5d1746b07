//! Transformations that reshape partitions rather than records: `coalesce`, `repartition`,
//! `glom`, `zip_with_index`, and `sample` (whose choice depends on the partitioning).

use crate::dataset::{NodeDef, encode_value};
use crate::exec::{self, fn_ref_merge, fn_ref_op, fn_ref_sink, label, merges, ops, sampling};
use crate::exec::{shuffle, sinks};
use crate::pairs::{shuffle_node, side};
use crate::plan::NodeKind;
use crate::record::assert_shippable;
use crate::{Dataset, Error, Key, Record};
use std::panic::Location;

impl<T: 'static> Dataset<T> {
    /// At most `partitions` partitions, each made of consecutive partitions of this dataset;
    /// nothing is moved (so fewer, larger tasks). Asking for more partitions than there are
    /// keeps them as they are; see [`repartition`](Self::repartition) to spread records out.
    #[track_caller]
    pub fn coalesce(&self, partitions: u32) -> Dataset<T> {
        let concat = exec::call(
            label("coalesce", Location::caller()),
            fn_ref_merge(merges::concat::<T>),
            Vec::new(),
        );
        let kind = NodeKind::Coalesce { partitions: partitions.max(1), concat };
        Dataset::from_node(NodeDef::new(vec![self.node.clone()], kind))
    }

    /// Each partition as one record: a `Vec` of its records.
    #[track_caller]
    pub fn glom(&self) -> Dataset<Vec<T>> {
        let func = ops::map_partitions_ref(|records: Box<dyn Iterator<Item = T>>| {
            std::iter::once(records.collect::<Vec<T>>())
        });
        self.narrow(exec::call(label("glom", Location::caller()), func, Vec::new()))
    }

    /// Each record with its index: records are numbered in partition order, as `collect` returns
    /// them. Like Spark, this runs a first pass at once, counting each partition's records.
    #[track_caller]
    pub fn zip_with_index(&self) -> Dataset<(T, u64)> {
        let name = label("zip_with_index", Location::caller());
        let counting = exec::call(
            format!("{name} (counting partitions)"),
            fn_ref_sink(sinks::count::<T>),
            Vec::new(),
        );
        let counts = match self.run_to_driver_decoded::<u64>(counting) {
            Ok(counts) => counts,
            Err(e) => return Dataset::from_node(NodeDef::failed(e)),
        };
        let offsets: Vec<u64> = counts
            .iter()
            .scan(0u64, |next, n| {
                let start = *next;
                *next += n;
                Some(start)
            })
            .collect();
        let func = fn_ref_op(ops::zip_with_index::<T>);
        self.narrow(exec::call(name, func, encode_value(&offsets)))
    }
}

impl<T: Record> Dataset<T> {
    /// The same records spread evenly over exactly `partitions` partitions (a shuffle that deals
    /// them out in turn). To only reduce the number of partitions, [`coalesce`](Self::coalesce)
    /// moves nothing.
    #[track_caller]
    pub fn repartition(&self, partitions: u32) -> Dataset<T> {
        let name = label("repartition", Location::caller());
        let side = side::<T>(&name, shuffle::write_round_robin::<T>, Vec::new(), None);
        let merge = exec::call(name, fn_ref_merge(merges::concat::<T>), Vec::new());
        shuffle_node(vec![self.node.clone()], vec![side], merge, Some(partitions.max(1)), false)
    }
}

impl<T: Record + Clone> Dataset<T> {
    /// A random sample: without replacement each record is kept with probability `fraction`
    /// (between 0 and 1); with replacement each record appears a Poisson(`fraction`) number of
    /// times (`fraction` ≥ 0). The same seed over the same partitioning gives the same sample.
    #[track_caller]
    pub fn sample(&self, with_replacement: bool, fraction: f64, seed: u64) -> Dataset<T> {
        let name = label("sample", Location::caller());
        let bad = !fraction.is_finite() || fraction < 0.0 || (!with_replacement && fraction > 1.0);
        if bad {
            let range = if with_replacement { "at least 0" } else { "between 0 and 1" };
            let e = Error::Unsupported(format!(
                "`{name}`: the fraction must be {range}, not {fraction}"
            ));
            return Dataset::from_node(NodeDef::failed(e));
        }
        let func = fn_ref_op(sampling::sample::<T>);
        let arg = encode_value(&(with_replacement, fraction, seed));
        self.narrow_keeping(exec::call(name, func, arg), true)
    }
}

impl<T: Record> Dataset<T> {
    /// Records grouped by the key `f` computes: `(key, records with that key)`.
    #[track_caller]
    pub fn group_by<K: Key, F: Fn(&T) -> K + 'static>(&self, _f: F) -> Dataset<(K, Vec<T>)> {
        assert_shippable!(F);
        let name = label("group_by", Location::caller());
        let keyed: Dataset<(K, T)> =
            self.narrow(exec::call(name.clone(), fn_ref_op(ops::key_by::<T, K, F>), Vec::new()));
        keyed.group_by_key_as(name)
    }
}
