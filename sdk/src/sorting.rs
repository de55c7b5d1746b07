//! Ordering: `sort_by_key` and `sort_by` (a total order across partitions), and the ordered
//! actions `take_ordered`, `top`, `min` and `max`.
//!
//! Design choice (Spark's `RangePartitioner`): sorting is a shuffle by key *range*, so that
//! partition *i*'s keys all come before partition *i + 1*'s and each partition is sorted on its
//! own. The ranges come from a first pass, run at once when the sort is defined, that counts each
//! partition and draws a uniform sample of its keys; each sampled key stands for
//! (partition size ÷ sample size) records, and the bounds cut the weighted sample into equal
//! shares. A key too frequent to share is not split: its records all go to one partition.

use crate::dataset::{NodeDef, encode_value};
use crate::exec::{self, fn_ref_merge, fn_ref_sink, label, merges, shuffle, sinks};
use crate::pairs::{shuffle_node, side};
use crate::record::assert_shippable;
use crate::{Dataset, Record, Result};
use std::panic::Location;

/// Keys sampled per partition for each output partition (Spark's 20, with its 3x
/// oversampling).
const SAMPLE_PER_OUTPUT_PARTITION: u64 = 60;
/// Most keys sampled in one partition.
const MAX_SAMPLE_PER_PARTITION: u64 = 10_000;
/// The sample's seed: sorting the same data the same way picks the same ranges.
const SAMPLE_SEED: u64 = 0x736f_7274;

impl<K: Record + Ord + Clone, V: Record> Dataset<(K, V)> {
    /// The records sorted by key, in as many partitions as this dataset has: `collect` returns
    /// them in order, and `save_as_text_file` writes parts whose concatenation is in order.
    /// Runs a first pass at once to sample the keys.
    #[track_caller]
    pub fn sort_by_key(&self, ascending: bool) -> Dataset<(K, V)> {
        self.sort_as(ascending, None, label("sort_by_key", Location::caller()))
    }

    /// [`sort_by_key`](Self::sort_by_key) into `partitions` partitions.
    #[track_caller]
    pub fn sort_by_key_into(&self, ascending: bool, partitions: u32) -> Dataset<(K, V)> {
        let name = label("sort_by_key_into", Location::caller());
        self.sort_as(ascending, Some(partitions.max(1)), name)
    }

    pub(crate) fn sort_as(&self, ascending: bool, partitions: Option<u32>, name: String) -> Self {
        let size = partitions.map_or(SAMPLE_PER_OUTPUT_PARTITION, |n| {
            (SAMPLE_PER_OUTPUT_PARTITION * u64::from(n)).min(MAX_SAMPLE_PER_PARTITION)
        });
        let sampling = exec::call(
            format!("{name} (sampling keys)"),
            fn_ref_sink(sinks::key_sample::<K, V>),
            encode_value(&(size, SAMPLE_SEED)),
        );
        let samples = match self.run_to_driver_decoded::<(u64, Vec<K>)>(sampling) {
            Ok(samples) => samples,
            Err(e) => return Dataset::from_node(NodeDef::failed(e)),
        };
        let n = partitions.unwrap_or(samples.len().max(1) as u32);
        let bounds = range_bounds(samples, n as usize);
        let arg = encode_value(&(bounds, ascending));
        let side = side::<(K, V)>(&name, shuffle::write_ranges::<K, V>, arg, None);
        let merge =
            exec::call(name, fn_ref_merge(merges::sorted::<K, V>), encode_value(&ascending));
        shuffle_node(vec![self.node.clone()], vec![side], merge, Some(n), false)
    }
}

/// At most `partitions - 1` increasing bounds that cut the weighted key sample into equal
/// shares: (partition count, sampled keys) per partition. Spark's `determineBounds`.
pub(crate) fn range_bounds<K: Ord + Clone>(
    samples: Vec<(u64, Vec<K>)>,
    partitions: usize,
) -> Vec<K> {
    let mut weighted: Vec<(K, f64)> = Vec::new();
    for (count, keys) in samples {
        if keys.is_empty() {
            continue;
        }
        let weight = count as f64 / keys.len() as f64;
        weighted.extend(keys.into_iter().map(|k| (k, weight)));
    }
    weighted.sort_by(|a, b| a.0.cmp(&b.0));
    let total: f64 = weighted.iter().map(|(_, w)| w).sum();
    let step = total / partitions.max(1) as f64;
    let mut bounds: Vec<K> = Vec::with_capacity(partitions.saturating_sub(1));
    let (mut cumulative, mut target) = (0.0, step);
    for (key, weight) in weighted {
        if bounds.len() + 1 >= partitions {
            break;
        }
        cumulative += weight;
        if cumulative >= target && bounds.last().is_none_or(|last| key > *last) {
            bounds.push(key);
            target += step;
        }
    }
    bounds
}

impl<T: Record> Dataset<T> {
    /// The records sorted by the key `f` computes (see [`sort_by_key`](Dataset::sort_by_key)).
    #[track_caller]
    pub fn sort_by<K, F>(&self, _f: F, ascending: bool) -> Dataset<T>
    where
        K: Record + Ord + Clone,
        F: Fn(&T) -> K + 'static,
    {
        assert_shippable!(F);
        let name = label("sort_by", Location::caller());
        let func = exec::fn_ref_op(exec::ops::key_by::<T, K, F>);
        let keyed: Dataset<(K, T)> = self.narrow(exec::call(name.clone(), func, Vec::new()));
        keyed.sort_as(ascending, None, name.clone()).map_as(|(_, x): (K, T)| x, name)
    }
}

impl<T: Record + Ord> Dataset<T> {
    /// The `n` smallest records, in ascending order. Each task keeps only its `n` smallest.
    #[track_caller]
    pub fn take_ordered(&self, n: usize) -> Result<Vec<T>> {
        self.ordered(n, false, label("take_ordered", Location::caller()))
    }

    /// The `n` largest records, in descending order.
    #[track_caller]
    pub fn top(&self, n: usize) -> Result<Vec<T>> {
        self.ordered(n, true, label("top", Location::caller()))
    }

    fn ordered(&self, n: usize, descending: bool, name: String) -> Result<Vec<T>> {
        let arg = encode_value(&(n as u64, descending));
        let sink = exec::call(name, fn_ref_sink(sinks::take_ordered::<T>), arg);
        let parts = self.run_to_driver_decoded::<Vec<T>>(sink)?;
        let all = parts.into_iter().flatten();
        Ok(if descending {
            let best = sinks::smallest(all.map(std::cmp::Reverse), n as u64);
            best.into_iter().map(|r| r.0).collect()
        } else {
            sinks::smallest(all, n as u64)
        })
    }

    /// The largest record, `None` for an empty dataset.
    #[track_caller]
    pub fn max(&self) -> Result<Option<T>> {
        let mut top = self.ordered(1, true, label("max", Location::caller()))?;
        Ok(top.pop())
    }

    /// The smallest record, `None` for an empty dataset.
    #[track_caller]
    pub fn min(&self) -> Result<Option<T>> {
        let mut least = self.ordered(1, false, label("min", Location::caller()))?;
        Ok(least.pop())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cut_a_weighted_sample_into_equal_shares() {
        // Two partitions: 1000 records sampled 10 times (weight 100), 10 records sampled whole.
        let big: Vec<u32> = (0..10).map(|i| i * 10).collect();
        let small: Vec<u32> = (100..110).collect();
        let bounds = range_bounds(vec![(1000, big), (10, small)], 4);
        // 1010 records in 4 shares of 252.5: the big partition's keys carry them.
        assert_eq!(bounds, vec![20, 50, 70]);
        // A key that dominates is not split, and fewer distinct keys give fewer bounds.
        assert_eq!(range_bounds(vec![(100, vec![5u32; 10])], 8), vec![5]);
        assert!(range_bounds::<u32>(vec![(0, vec![])], 4).is_empty());
    }
}
