//! [`Context`]: the driver's entry point — job arguments and sources.

use crate::abi::CsvOptions;
use crate::dataset::{NodeDef, encode_value};
use crate::exec::{self, fn_ref_source, label, sources};
use crate::plan::{InlineBatch, NodeKind, Source};
use crate::{Accumulator, AccumulatorNumber, Broadcast, Dataset, Record};
use std::panic::Location;

/// The job's handle on the engine. Create one at the start of `main`.
pub struct Context {
    _private: (),
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Context {
    /// Start the job: connects panics in the driver to the host's error reporting.
    pub fn new() -> Context {
        // Natively (tests, IDE builds) the default hook is the useful one.
        #[cfg(target_arch = "wasm32")]
        exec::install_panic_hook();
        Context { _private: () }
    }

    /// The job's arguments: whatever followed `--` on the `weft run` / `weft submit` command line.
    pub fn args(&self) -> Vec<String> {
        std::env::args().skip(1).collect()
    }

    /// Distribute `data` over `partitions` partitions (at least one). The records travel inside
    /// the plan, so this is meant for small inputs and tests.
    #[track_caller]
    pub fn parallelize<T: Record>(&self, data: Vec<T>, partitions: usize) -> Dataset<T> {
        let at = Location::caller();
        let partitions = partitions.max(1);
        let per = data.len().div_ceil(partitions).max(1);
        let mut batches: Vec<InlineBatch> = Vec::with_capacity(partitions);
        let mut rest = data.into_iter();
        for _ in 0..partitions {
            let chunk: Vec<T> = rest.by_ref().take(per).collect();
            batches.push(InlineBatch(encode_value(&chunk)));
        }
        let decode = fn_ref_source(sources::records::<T>);
        Dataset::from_node(NodeDef::new(
            vec![],
            NodeKind::Source {
                source: Source::Inline { partitions: batches },
                decode: exec::call(label("parallelize", at), decode, Vec::new()),
            },
        ))
    }

    /// The numbers `start..end` in `partitions` partitions (at least one) of nearly equal size.
    /// Each task generates its own numbers: nothing is read or shipped.
    #[track_caller]
    pub fn range(&self, start: u64, end: u64, partitions: u32) -> Dataset<u64> {
        let partitions = partitions.max(1);
        let decode = exec::call(
            label("range", Location::caller()),
            fn_ref_source(sources::range),
            encode_value(&(start, end, partitions)),
        );
        Dataset::from_node(NodeDef::new(
            vec![],
            NodeKind::Source { source: Source::Generated { partitions }, decode },
        ))
    }

    /// Send `value` to every node once, for closures to read (see [`Broadcast`]). It travels
    /// with the next action, beside the plan; a task reads it with `value()`. At most 48 MiB
    /// encoded: a larger value panics here, naming the limit.
    #[track_caller]
    pub fn broadcast<T: Record>(&self, value: T) -> Broadcast<T> {
        match Broadcast::new(value) {
            Ok(b) => b,
            Err(e) => panic!("weft: {e}"),
        }
    }

    /// A new accumulator of `u64`, `i64` or `f64`, starting at 0; `name` is for people
    /// reading the job's log. See [`Accumulator`].
    pub fn accumulator<T: AccumulatorNumber>(&self, name: &str) -> Accumulator<T> {
        Accumulator::new(name)
    }

    /// The lines of a text file, of every file in a directory, or of every file matching a glob
    /// (`logs/*.txt`), relative to the job's data directory. One record per line, without the line
    /// ending. `.gz` files are decompressed; large plain files are split into several partitions.
    #[track_caller]
    pub fn text_file(&self, path: &str) -> Dataset<String> {
        let at = Location::caller();
        let decode = fn_ref_source(sources::text_lines);
        Dataset::from_node(NodeDef::new(
            vec![],
            NodeKind::Source {
                source: Source::TextFiles { path: path.to_string() },
                decode: exec::call(
                    format!("{} ({path})", label("text_file", at)),
                    decode,
                    Vec::new(),
                ),
            },
        ))
    }

    /// The rows of CSV file(s) with a header row, each deserialised into `T` by matching columns
    /// to `T`'s serde field names. A row that does not parse fails the job with the file, line and
    /// column; see [`csv_with`](Self::csv_with) for null markers and skipping bad rows.
    #[track_caller]
    pub fn csv<T: Record>(&self, path: &str) -> Dataset<T> {
        self.csv_at(path, CsvOptions::default(), Location::caller())
    }

    /// [`csv`](Self::csv) with options, e.g.
    /// `CsvOptions::new().null_value("NA").skip_bad_rows()`.
    #[track_caller]
    pub fn csv_with<T: Record>(&self, path: &str, options: CsvOptions) -> Dataset<T> {
        self.csv_at(path, options, Location::caller())
    }

    fn csv_at<T: Record>(&self, path: &str, options: CsvOptions, at: &Location<'_>) -> Dataset<T> {
        let decode = fn_ref_source(exec::csv_rows::<T>);
        Dataset::from_node(NodeDef::new(
            vec![],
            NodeKind::Source {
                source: Source::CsvFiles { path: path.to_string() },
                decode: exec::call(
                    format!("{} ({path})", label("csv", at)),
                    decode,
                    encode_value(&options),
                ),
            },
        ))
    }
}
