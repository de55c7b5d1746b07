//! [`Dataset`]: a lazy, partitioned collection of records and its narrow transformations.
//!
//! A dataset is a node of a logical plan held by reference counting; transformations create new
//! nodes and run nothing. Every transformation takes a closure that must not capture its
//! environment (checked at compile time, see [`crate::record`]); the `*_with` variants ship a value
//! alongside. Each transformation records its source location, which error messages quote.

use crate::exec::{self, fn_ref_op, ops};
use crate::plan::{CacheCalls, Call, DatasetId, NodeIndex, NodeKind, Plan, PlanNode};
use crate::record::assert_shippable;
use crate::{Error, Record, Result, exec::label};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::panic::Location;
use std::rc::Rc;

/// A node of the plan as the guest holds it: like [`PlanNode`] but with parents by reference.
pub(crate) struct NodeDef {
    id: DatasetId,
    parents: Vec<Rc<NodeDef>>,
    kind: NodeKind,
    /// Why the dataset cannot be computed: a pass its transformation ran at once (the count of
    /// `zip_with_index`, the key sample of `sort_by_key`) failed. Actions on it, or on anything
    /// built from it, return this error.
    failure: Option<Error>,
    /// Set by `cache()`: how the dataset's partitions are kept (see [`crate::persist`]).
    cache: RefCell<Option<CacheCalls>>,
}

thread_local! {
    /// The next dataset id of this driver (ids are never reused within a job).
    static NEXT_DATASET: Cell<u64> = const { Cell::new(1) };
}

impl NodeDef {
    /// A new dataset computed from `parents` as `kind` says.
    pub(crate) fn new(parents: Vec<Rc<NodeDef>>, kind: NodeKind) -> NodeDef {
        let id = NEXT_DATASET.with(|next| next.replace(next.get() + 1));
        NodeDef { id: DatasetId(id), parents, kind, failure: None, cache: RefCell::new(None) }
    }

    /// The dataset's id.
    pub(crate) fn id(&self) -> DatasetId {
        self.id
    }

    /// Mark the dataset cached (or not); returns whether it was.
    pub(crate) fn set_cache(&self, calls: Option<CacheCalls>) -> bool {
        self.cache.replace(calls).is_some()
    }

    /// A dataset that cannot be computed, for `error` (it is never planned: building a plan
    /// that holds it returns the error).
    pub(crate) fn failed(error: Error) -> NodeDef {
        let node = NodeDef::new(vec![], NodeKind::Union);
        NodeDef { failure: Some(error), ..node }
    }
}

/// A lazy, partitioned collection of records of type `T`.
///
/// Build one from a [`Context`](crate::Context) source, transform it, and run an action
/// (`collect`, `count`, …) to compute it. Cloning is cheap and shares the plan.
pub struct Dataset<T> {
    pub(crate) node: Rc<NodeDef>,
    _records: PhantomData<fn() -> T>,
}

impl<T> Clone for Dataset<T> {
    fn clone(&self) -> Self {
        Dataset { node: self.node.clone(), _records: PhantomData }
    }
}

impl<T: 'static> Dataset<T> {
    pub(crate) fn from_node(node: NodeDef) -> Self {
        Dataset { node: Rc::new(node), _records: PhantomData }
    }

    /// A narrow child of this dataset.
    pub(crate) fn narrow<U: 'static>(&self, op: Call) -> Dataset<U> {
        self.narrow_keeping(op, false)
    }

    /// A narrow child of this dataset; `keeps_partitioning` if `op` keeps every record's key.
    pub(crate) fn narrow_keeping<U: 'static>(
        &self,
        op: Call,
        keeps_partitioning: bool,
    ) -> Dataset<U> {
        let kind = NodeKind::Narrow { op, keeps_partitioning };
        Dataset::from_node(NodeDef::new(vec![self.node.clone()], kind))
    }

    /// Apply `f` to every record.
    #[track_caller]
    pub fn map<U: 'static, F: Fn(T) -> U + 'static>(&self, _f: F) -> Dataset<U> {
        assert_shippable!(F);
        let func = fn_ref_op(ops::map::<T, U, F>);
        self.narrow(exec::call(label("map", Location::caller()), func, Vec::new()))
    }

    /// `map` under the label `name`, for operators the SDK builds of its own closures.
    pub(crate) fn map_as<U: 'static, F: Fn(T) -> U + 'static>(
        &self,
        f: F,
        name: String,
    ) -> Dataset<U> {
        self.narrow(exec::call(name, ops::map_ref(f), Vec::new()))
    }

    /// `flat_map` under the label `name` (see [`map_as`](Self::map_as)).
    pub(crate) fn flat_map_as<U, I, F>(&self, f: F, name: String) -> Dataset<U>
    where
        U: 'static,
        I: IntoIterator<Item = U> + 'static,
        F: Fn(T) -> I + 'static,
    {
        self.narrow(exec::call(name, ops::flat_map_ref(f), Vec::new()))
    }

    /// Apply `f` to every record, passing it `value` (serialised and shipped with the task).
    #[track_caller]
    pub fn map_with<V: Record, U: 'static, F: Fn(&V, T) -> U + 'static>(
        &self,
        value: V,
        _f: F,
    ) -> Dataset<U> {
        assert_shippable!(F);
        let func = fn_ref_op(ops::map_with::<V, T, U, F>);
        self.narrow(exec::call(label("map_with", Location::caller()), func, encode_value(&value)))
    }

    /// Replace every record by the items of the iterable `f` returns.
    #[track_caller]
    pub fn flat_map<U: 'static, I: IntoIterator<Item = U> + 'static, F: Fn(T) -> I + 'static>(
        &self,
        _f: F,
    ) -> Dataset<U> {
        assert_shippable!(F);
        let func = fn_ref_op(ops::flat_map::<T, U, I, F>);
        self.narrow(exec::call(label("flat_map", Location::caller()), func, Vec::new()))
    }

    /// Like [`flat_map`](Self::flat_map), passing `value` to `f`.
    #[track_caller]
    pub fn flat_map_with<V, U, I, F>(&self, value: V, _f: F) -> Dataset<U>
    where
        V: Record,
        U: 'static,
        I: IntoIterator<Item = U> + 'static,
        F: Fn(&V, T) -> I + 'static,
    {
        assert_shippable!(F);
        let func = fn_ref_op(ops::flat_map_with::<V, T, U, I, F>);
        let call =
            exec::call(label("flat_map_with", Location::caller()), func, encode_value(&value));
        self.narrow(call)
    }

    /// Keep the records for which `f` returns true.
    #[track_caller]
    pub fn filter<F: Fn(&T) -> bool + 'static>(&self, _f: F) -> Dataset<T> {
        assert_shippable!(F);
        let func = fn_ref_op(ops::filter::<T, F>);
        self.narrow_keeping(exec::call(label("filter", Location::caller()), func, Vec::new()), true)
    }

    /// Keep the records for which `f(&value, &record)` returns true.
    #[track_caller]
    pub fn filter_with<V: Record, F: Fn(&V, &T) -> bool + 'static>(
        &self,
        value: V,
        _f: F,
    ) -> Dataset<T> {
        assert_shippable!(F);
        let func = fn_ref_op(ops::filter_with::<V, T, F>);
        let call = exec::call(label("filter_with", Location::caller()), func, encode_value(&value));
        self.narrow_keeping(call, true)
    }

    /// Transform a whole partition at once: `f` receives an iterator over the partition's records
    /// and returns the output records (e.g. to set up something costly once per partition).
    #[track_caller]
    pub fn map_partitions<U, I, F>(&self, _f: F) -> Dataset<U>
    where
        U: 'static,
        I: IntoIterator<Item = U> + 'static,
        F: Fn(Box<dyn Iterator<Item = T>>) -> I + 'static,
    {
        assert_shippable!(F);
        let func = fn_ref_op(ops::map_partitions::<T, U, I, F>);
        self.narrow(exec::call(label("map_partitions", Location::caller()), func, Vec::new()))
    }

    /// Pair every record with a key computed by `f`: `(f(&x), x)`.
    #[track_caller]
    pub fn key_by<K: 'static, F: Fn(&T) -> K + 'static>(&self, _f: F) -> Dataset<(K, T)> {
        assert_shippable!(F);
        let func = fn_ref_op(ops::key_by::<T, K, F>);
        self.narrow(exec::call(label("key_by", Location::caller()), func, Vec::new()))
    }
}

/// Encode a shipped value. Encoding a `Serialize` value into a `Vec` only fails for types whose
/// `Serialize` impl itself errors, which is a bug in the job: say so at the call site.
#[track_caller]
pub(crate) fn encode_value<V: Record>(value: &V) -> Vec<u8> {
    match rmp_serde::to_vec(value) {
        Ok(bytes) => bytes,
        Err(e) => panic!("weft: cannot serialise the value shipped with this operator: {e}"),
    }
}

/// Flatten the plan ending at `target` into topological order; returns the plan and the target's
/// index, or the failure of a dataset it depends on. Shared sub-plans (a dataset used twice)
/// appear once.
pub(crate) fn build_plan(target: &Rc<NodeDef>) -> Result<(Plan, NodeIndex)> {
    let mut index: HashMap<*const NodeDef, NodeIndex> = HashMap::new();
    let mut plan = Plan::default();
    // Iterative post-order: (node, parents_done).
    let mut stack: Vec<(Rc<NodeDef>, bool)> = vec![(target.clone(), false)];
    while let Some((node, expanded)) = stack.pop() {
        let key = Rc::as_ptr(&node);
        if index.contains_key(&key) {
            continue;
        }
        if !expanded {
            stack.push((node.clone(), true));
            // Reversed, so that the first parent is visited (and numbered) first.
            for p in node.parents.iter().rev() {
                stack.push((p.clone(), false));
            }
            continue;
        }
        if let Some(error) = &node.failure {
            return Err(error.clone());
        }
        let parents = node.parents.iter().map(|p| index[&Rc::as_ptr(p)]).collect();
        index.insert(key, plan.nodes.len() as NodeIndex);
        let cache = node.cache.borrow().clone();
        plan.nodes.push(PlanNode { dataset: node.id, parents, kind: node.kind.clone(), cache });
    }
    let id = index[&Rc::as_ptr(target)];
    Ok((plan, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;

    #[test]
    fn a_dataset_used_twice_appears_once_in_the_plan() {
        let ctx = Context::new();
        let base = ctx.parallelize(vec![1u32, 2, 3], 2).map(|x: u32| x + 1);
        let left = base.map(|x: u32| (x, 1u32));
        let both = left.reduce_by_key(|a, b| a + b).map(|(k, v): (u32, u32)| k + v);
        let (plan, target) = build_plan(&both.node).unwrap();
        // source, map, map, shuffle, map: five nodes, parents first.
        assert_eq!(plan.nodes.len(), 5);
        assert_eq!(target, 4);
        for (i, node) in plan.nodes.iter().enumerate() {
            match &node.kind {
                NodeKind::Source { .. } => assert_eq!((i, node.parents.len()), (0, 0)),
                _ => {
                    assert_eq!(node.parents.len(), 1);
                    assert!((node.parents[0] as usize) < i)
                }
            }
        }
        // Building the plan of a shared parent for another action gives its nodes the same
        // dataset ids.
        let (plan2, _) = build_plan(&base.node).unwrap();
        assert_eq!(plan2.nodes.len(), 2);
        assert_eq!(
            plan2.nodes.iter().map(|n| n.dataset).collect::<Vec<_>>(),
            plan.nodes[..2].iter().map(|n| n.dataset).collect::<Vec<_>>()
        );
        let ids: std::collections::HashSet<_> = plan.nodes.iter().map(|n| n.dataset).collect();
        assert_eq!(ids.len(), 5, "every dataset has an id of its own");
    }

    #[test]
    fn parallelize_spreads_records_over_the_asked_partitions() {
        let ctx = Context::new();
        let ds = ctx.parallelize((0..10u32).collect(), 3);
        let (plan, _) = build_plan(&ds.node).unwrap();
        let NodeKind::Source { source: crate::plan::Source::Inline { partitions }, .. } =
            &plan.nodes[0].kind
        else {
            panic!("expected an inline source");
        };
        let sizes: Vec<usize> = partitions
            .iter()
            .map(|p| rmp_serde::from_slice::<Vec<u32>>(&p.0).unwrap().len())
            .collect();
        assert_eq!(sizes, [4, 4, 2]);
    }
}
