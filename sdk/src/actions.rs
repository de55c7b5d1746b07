//! Actions: run the plan on the engine and bring results back to the driver (or write them out).
//!
//! Each action asks the host to run the plan with a sink of its own. Results come back as the
//! MessagePack batches every task of the final stage emitted; combining them (concatenating,
//! summing counts, folding partial reductions) happens here, in the driver.

use crate::dataset::{build_plan, encode_value};
use crate::exec::{self, fn_ref_sink, label, sinks};
use crate::plan::{ActionKind, ActionOutput, ActionReply, ActionRequest, Call};
use crate::record::assert_shippable;
use crate::{Dataset, Error, Key, Record, Result};
use std::collections::HashMap;
use std::fmt::Display;
use std::panic::Location;

impl<T: 'static> Dataset<T> {
    fn run(&self, sink: Call, kind: ActionKind) -> Result<ActionOutput> {
        let (plan, target) = build_plan(&self.node)?;
        let unpersist = crate::persist::take_unpersisted();
        let broadcasts = crate::broadcast::take_pending();
        let request = ActionRequest { plan, target, sink, kind, unpersist, broadcasts };
        let bytes = rmp_serde::to_vec(&request)?;
        let reply = crate::host::run_action(&bytes)?;
        match rmp_serde::from_slice::<ActionReply>(&reply)? {
            ActionReply::Done(output) => {
                crate::accumulators::apply(&output.accumulators)?;
                Ok(output)
            }
            ActionReply::Failed(message) => Err(Error::Job(message)),
        }
    }

    fn run_to_driver(&self, sink: Call) -> Result<ActionOutput> {
        self.run(sink, ActionKind::ToDriver)
    }

    /// Run `sink`, which emits one MessagePack `R` per task, and decode them in partition order.
    pub(crate) fn run_to_driver_decoded<R: Record>(&self, sink: Call) -> Result<Vec<R>> {
        let output = self.run_to_driver(sink)?;
        output.batches.iter().map(|b| Ok(rmp_serde::from_slice::<R>(&b.0)?)).collect()
    }

    /// Run `f` on every record, in the tasks (for its side effects: accumulators, printing to
    /// the job's log).
    #[track_caller]
    pub fn for_each<F: Fn(T) + 'static>(&self, _f: F) -> Result<()> {
        assert_shippable!(F);
        let func = fn_ref_sink(sinks::for_each::<T, F>);
        self.run_to_driver(exec::call(label("for_each", Location::caller()), func, Vec::new()))?;
        Ok(())
    }

    /// Like [`for_each`](Self::for_each), passing `value` to `f`.
    #[track_caller]
    pub fn for_each_with<V: Record, F: Fn(&V, T) + 'static>(&self, value: V, _f: F) -> Result<()> {
        assert_shippable!(F);
        let func = fn_ref_sink(sinks::for_each_with::<V, T, F>);
        let call =
            exec::call(label("for_each_with", Location::caller()), func, encode_value(&value));
        self.run_to_driver(call)?;
        Ok(())
    }

    /// Fold every record into an accumulator of type `U`: each partition is folded with `seq`
    /// from a copy of `zero`, and the partitions' results are merged with `comb`, starting from
    /// `zero` too (so `zero` must be neutral for both, as in Spark).
    #[track_caller]
    pub fn aggregate<U, S, C>(&self, zero: U, _seq: S, comb: C) -> Result<U>
    where
        U: Record + Clone,
        S: Fn(U, T) -> U + 'static,
        C: Fn(U, U) -> U + 'static,
    {
        assert_shippable!(S);
        let func = fn_ref_sink(sinks::aggregate::<T, U, S>);
        let sink = exec::call(label("aggregate", Location::caller()), func, encode_value(&zero));
        let parts = self.run_to_driver_decoded::<U>(sink)?;
        Ok(parts.into_iter().fold(zero, comb))
    }

    /// Number of records.
    #[track_caller]
    pub fn count(&self) -> Result<u64> {
        let sink = exec::call(
            label("count", Location::caller()),
            fn_ref_sink(sinks::count::<T>),
            Vec::new(),
        );
        let output = self.run_to_driver(sink)?;
        output.batches.iter().try_fold(0u64, |sum, b| Ok(sum + rmp_serde::from_slice::<u64>(&b.0)?))
    }
}

impl<T: Record> Dataset<T> {
    /// All records, in partition order.
    #[track_caller]
    pub fn collect(&self) -> Result<Vec<T>> {
        self.collect_as(label("collect", Location::caller()))
    }

    /// `collect` under the label `name`.
    pub(crate) fn collect_as(&self, name: String) -> Result<Vec<T>> {
        let func = fn_ref_sink(sinks::collect::<T>);
        decode_all(&self.run_to_driver(exec::call(name, func, Vec::new()))?)
    }

    /// The first `n` records, in partition order.
    #[track_caller]
    pub fn take(&self, n: usize) -> Result<Vec<T>> {
        let func = fn_ref_sink(sinks::take::<T>);
        let arg = rmp_serde::to_vec(&(n as u64))?;
        let output =
            self.run_to_driver(exec::call(label("take", Location::caller()), func, arg))?;
        let mut all = decode_all(&output)?;
        all.truncate(n);
        Ok(all)
    }

    /// The first record, if any.
    #[track_caller]
    pub fn first(&self) -> Result<Option<T>> {
        let func = fn_ref_sink(sinks::take::<T>);
        let arg = rmp_serde::to_vec(&1u64)?;
        let output =
            self.run_to_driver(exec::call(label("first", Location::caller()), func, arg))?;
        Ok(decode_all(&output)?.into_iter().next())
    }

    /// Fold every record with `f`, starting each partition, and then the merge of the
    /// partitions' results, from a copy of `zero` (which must be neutral for `f`, as in Spark).
    #[track_caller]
    pub fn fold<F: Fn(T, T) -> T + 'static>(&self, zero: T, f: F) -> Result<T>
    where
        T: Clone,
    {
        assert_shippable!(F);
        let func = fn_ref_sink(sinks::fold::<T, F>);
        let sink = exec::call(label("fold", Location::caller()), func, encode_value(&zero));
        let parts = self.run_to_driver_decoded::<T>(sink)?;
        Ok(parts.into_iter().fold(zero, &f))
    }

    /// Combine all records with `f` (associative and commutative); `None` for an empty dataset.
    #[track_caller]
    pub fn reduce<F: Fn(T, T) -> T + 'static>(&self, f: F) -> Result<Option<T>> {
        assert_shippable!(F);
        let func = fn_ref_sink(sinks::reduce::<T, F>);
        let output =
            self.run_to_driver(exec::call(label("reduce", Location::caller()), func, Vec::new()))?;
        let mut acc: Option<T> = None;
        for batch in &output.batches {
            if let Some(partial) = rmp_serde::from_slice::<Option<T>>(&batch.0)? {
                acc = Some(match acc {
                    Some(a) => f(a, partial),
                    None => partial,
                });
            }
        }
        Ok(acc)
    }
}

impl<T: Display + 'static> Dataset<T> {
    /// Write one line per record (its `Display` form) into directory `dir` under the data
    /// directory, one `part-NNNNN` file per partition. `dir` must not exist yet; it appears only
    /// once every part is complete.
    #[track_caller]
    pub fn save_as_text_file(&self, dir: &str) -> Result<()> {
        let func = fn_ref_sink(sinks::text::<T>);
        let sink = exec::call(label("save_as_text_file", Location::caller()), func, Vec::new());
        self.run(sink, ActionKind::SaveText { path: dir.to_string() })?;
        Ok(())
    }
}

fn decode_all<T: Record>(output: &ActionOutput) -> Result<Vec<T>> {
    let mut all = Vec::new();
    for batch in &output.batches {
        all.extend(rmp_serde::from_slice::<Vec<T>>(&batch.0)?);
    }
    Ok(all)
}

impl<T: Key> Dataset<T> {
    /// How many times each distinct record appears (a `reduce_by_key` of `(x, 1)`).
    #[track_caller]
    pub fn count_by_value(&self) -> Result<HashMap<T, u64>> {
        let name = label("count_by_value", Location::caller());
        let counts = self.map_as(|x: T| (x, 1u64), name.clone()).reduce_by_key_as(
            |a: u64, b: u64| a + b,
            None,
            name.clone(),
        );
        Ok(counts.collect_as(name)?.into_iter().collect())
    }
}

impl<K: Key, V: Record> Dataset<(K, V)> {
    /// How many records each key has.
    #[track_caller]
    pub fn count_by_key(&self) -> Result<HashMap<K, u64>> {
        let name = label("count_by_key", Location::caller());
        let counts = self.map_as(|(k, _): (K, V)| (k, 1u64), name.clone()).reduce_by_key_as(
            |a: u64, b: u64| a + b,
            None,
            name.clone(),
        );
        Ok(counts.collect_as(name)?.into_iter().collect())
    }

    /// The records as a map; of several records with one key, the last in partition order
    /// stays.
    #[track_caller]
    pub fn collect_as_map(&self) -> Result<HashMap<K, V>> {
        Ok(self.collect_as(label("collect_as_map", Location::caller()))?.into_iter().collect())
    }

    /// The values of `key` (a pass over the whole dataset that keeps only them).
    #[track_caller]
    pub fn lookup(&self, key: &K) -> Result<Vec<V>> {
        let name = label("lookup", Location::caller());
        let func = exec::ops::filter_with_ref(|wanted: &K, (k, _): &(K, V)| k == wanted);
        let matching: Dataset<(K, V)> =
            self.narrow(exec::call(name.clone(), func, encode_value(key)));
        Ok(matching.collect_as(name)?.into_iter().map(|(_, v)| v).collect())
    }
}
