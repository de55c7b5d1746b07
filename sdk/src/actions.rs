//! Actions: run the plan on the engine and bring results back to the driver (or write them out).
//!
//! Each action asks the host to run the plan with a sink of its own. Results come back as the
//! MessagePack batches every task of the final stage emitted; combining them (concatenating,
//! summing counts, folding partial reductions) happens here, in the driver.

use crate::dataset::build_plan;
use crate::exec::{self, fn_ref_sink, label, sinks};
use crate::plan::{ActionKind, ActionOutput, ActionReply, ActionRequest, Call};
use crate::record::assert_shippable;
use crate::{Dataset, Error, Record, Result};
use std::fmt::Display;
use std::panic::Location;

impl<T: 'static> Dataset<T> {
    fn run(&self, sink: Call, kind: ActionKind) -> Result<ActionOutput> {
        let (plan, target) = build_plan(&self.node);
        let request = ActionRequest { plan, target, sink, kind };
        let bytes = rmp_serde::to_vec(&request)?;
        let reply = crate::host::run_action(&bytes)?;
        match rmp_serde::from_slice::<ActionReply>(&reply)? {
            ActionReply::Done(output) => Ok(output),
            ActionReply::Failed(message) => Err(Error::Job(message)),
        }
    }

    fn run_to_driver(&self, sink: Call) -> Result<ActionOutput> {
        self.run(sink, ActionKind::ToDriver)
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
        let func = fn_ref_sink(sinks::collect::<T>);
        let output =
            self.run_to_driver(exec::call(label("collect", Location::caller()), func, Vec::new()))?;
        decode_all(&output)
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
