//! Set-like operations on whole datasets: `union`, `distinct`, `intersection`, `subtract` and
//! `cartesian`.
//!
//! `union` and `cartesian` move nothing: their partitions are the parents' (all of them, or one
//! per pair). The others compare records across partitions, so they shuffle: each record becomes
//! a key (`(x, ())`) and Spark's definitions follow — `distinct` is a `reduce_by_key`,
//! `intersection` and `subtract` a `cogroup`.

use crate::dataset::NodeDef;
use crate::exec::{self, fn_ref_merge, label, merges};
use crate::plan::NodeKind;
use crate::{Dataset, Key, Record};
use std::panic::Location;

impl<T: 'static> Dataset<T> {
    /// The records of both datasets (duplicates kept): the partitions of this one, then those of
    /// `other`. Nothing is moved.
    pub fn union(&self, other: &Dataset<T>) -> Dataset<T> {
        Dataset::from_node(NodeDef::new(
            vec![self.node.clone(), other.node.clone()],
            NodeKind::Union,
        ))
    }
}

impl<T: Record + Clone> Dataset<T> {
    /// Every pair `(x, u)` of a record of this dataset and one of `other`: one partition per pair
    /// of partitions, each holding its partition of `other` in memory.
    #[track_caller]
    pub fn cartesian<U: Record + Clone>(&self, other: &Dataset<U>) -> Dataset<(T, U)> {
        let product = exec::call(
            label("cartesian", Location::caller()),
            fn_ref_merge(merges::product::<T, U>),
            Vec::new(),
        );
        Dataset::from_node(NodeDef::new(
            vec![self.node.clone(), other.node.clone()],
            NodeKind::Cartesian { product },
        ))
    }
}

impl<T: Key> Dataset<T> {
    /// Each distinct record once.
    #[track_caller]
    pub fn distinct(&self) -> Dataset<T> {
        let name = label("distinct", Location::caller());
        self.map_as(|x: T| (x, ()), name.clone())
            .reduce_by_key_as(|a: (), _b: ()| a, None, name.clone())
            .map_as(|(x, _): (T, ())| x, name)
    }

    /// The distinct records present in both datasets.
    #[track_caller]
    pub fn intersection(&self, other: &Dataset<T>) -> Dataset<T> {
        let name = label("intersection", Location::caller());
        let left = self.map_as(|x: T| (x, ()), name.clone());
        let right = other.map_as(|x: T| (x, ()), name.clone());
        left.cogroup_as(&right, name.clone()).flat_map_as(
            |(x, (l, r)): (T, (Vec<()>, Vec<()>))| (!l.is_empty() && !r.is_empty()).then_some(x),
            name,
        )
    }
}

impl<T: Key + Clone> Dataset<T> {
    /// The records of this dataset that do not appear in `other`: every copy of such a record is
    /// kept, and every copy of one that appears in `other` is removed.
    #[track_caller]
    pub fn subtract(&self, other: &Dataset<T>) -> Dataset<T> {
        let name = label("subtract", Location::caller());
        let left = self.map_as(|x: T| (x, ()), name.clone());
        let right = other.map_as(|x: T| (x, ()), name.clone());
        left.cogroup_as(&right, name.clone()).flat_map_as(
            |(x, (l, r)): (T, (Vec<()>, Vec<()>))| {
                let copies = if r.is_empty() { l.len() } else { 0 };
                std::iter::repeat_n(x, copies)
            },
            name,
        )
    }
}
