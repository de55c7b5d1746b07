//! The host/guest ABI: the functions a job module exports and imports, and the byte layouts that
//! cross the boundary.
//!
//! Design choice: the boundary is crossed once per *batch*, never once per record. The host pulls
//! nothing out of guest memory on its own initiative; the guest asks for input (`input_next` then
//! `input_read`) and pushes output (`emit`). Records inside batches are MessagePack (rmp-serde);
//! text and CSV input arrive as raw, line-aligned chunks ([`TextChunk`]) so that splitting lines is
//! done in the guest without a per-line encoding step.
//!
//! Exports of every Weft module (provided by the SDK, see its `exec` module):
//! - `weft_alloc(len: i32) -> i32`: reserve `len` bytes in guest memory for the host to fill.
//! - `weft_run_task(ptr: i32, len: i32) -> i32`: run the [`GuestTask`] encoded at `ptr`; returns
//!   [`STATUS_OK`] or [`STATUS_FAILED`] (after calling `fail` with the reason).
//! - `_start`: the driver (the user's `main`).
//!
//! Imports, all in module [`IMPORT_MODULE`]; the signatures are fixed here and in the host linker.

use crate::plan::Call;
use serde::{Deserialize, Serialize};

/// Wasm import module name of every host function.
pub const IMPORT_MODULE: &str = "weft";
/// Export: allocate guest memory for the host.
pub const EXPORT_ALLOC: &str = "weft_alloc";
/// Export: run one task.
pub const EXPORT_RUN_TASK: &str = "weft_run_task";

/// Import `input_next(input: i32) -> i64`: length of the next batch of the task's input number
/// `input` (a stage reading several shuffles has several), or -1 when that input is exhausted.
pub const IMPORT_INPUT_NEXT: &str = "input_next";
/// Import `input_read(input: i32, ptr: i32)`: copy the batch of `input` announced by `input_next`
/// to `ptr`.
pub const IMPORT_INPUT_READ: &str = "input_read";
/// Import `emit(channel: i32, ptr: i32, len: i32)`: hand an output batch to the host. The channel
/// is the shuffle bucket for shuffle writes and 0 otherwise.
pub const IMPORT_EMIT: &str = "emit";
/// Import `task_started(op_cell: i32)`: the address of a `u32` holding the index of the operator
/// currently running (0 = source, then ops, then sink), read by the host after a trap to name it.
pub const IMPORT_TASK_STARTED: &str = "task_started";
/// Import `fail(ptr: i32, len: i32)`: the UTF-8 reason the task is about to return failure.
pub const IMPORT_FAIL: &str = "fail";
/// Import `panic(ptr: i32, len: i32)`: the UTF-8 panic message, sent just before the guest traps.
pub const IMPORT_PANIC: &str = "panic";
/// Import `bad_rows(count: i64, ptr: i32, len: i32)`: rows skipped by a lenient CSV source, with
/// the first skipped row's error message.
pub const IMPORT_BAD_ROWS: &str = "bad_rows";
/// Import `run_action(ptr: i32, len: i32) -> i64` (driver only): run the
/// [`ActionRequest`](crate::plan::ActionRequest) at `ptr`; returns the length of the encoded
/// [`ActionReply`](crate::plan::ActionReply).
pub const IMPORT_RUN_ACTION: &str = "run_action";
/// Import `reply_read(ptr: i32)` (driver only): copy the reply announced by `run_action` to `ptr`.
pub const IMPORT_REPLY_READ: &str = "reply_read";

/// Import `accumulate(ptr: i32, len: i32)`: the task's accumulator updates, a MessagePack
/// `Vec<`[`AccumulatorUpdate`]`>`, sent once, after the task's work and before it returns
/// success.
pub const IMPORT_ACCUMULATE: &str = "accumulate";

/// Import `broadcast_len(id: i64) -> i64`: the length of broadcast value `id`, or -1 when the
/// task has no such value.
pub const IMPORT_BROADCAST_LEN: &str = "broadcast_len";
/// Import `broadcast_read(id: i64, ptr: i32)`: copy broadcast value `id` to `ptr`.
pub const IMPORT_BROADCAST_READ: &str = "broadcast_read";

/// Most accumulator updates one task may report.
pub const MAX_ACCUMULATOR_UPDATES: usize = 4096;

/// `weft_run_task` result: the task completed.
pub const STATUS_OK: i32 = 0;
/// `weft_run_task` result: the task failed; the reason was sent with `fail`.
pub const STATUS_FAILED: i32 = 1;

/// Everything a guest needs to run one task: the steps that compute the task's records, and a
/// sink that consumes them.
///
/// Design choice: the steps are a small DAG in topological order, built by the coordinator for
/// each partition. A stage of a linear plan is a source followed by a chain of operators (fused
/// into one pass, as before); a stage that reads the partitions of several parents (a union, a
/// coalesce, a co-partitioned cogroup, a cartesian product) merges several chains. Each step's
/// records are consumed by exactly one later step; the last step's feed the sink. A step's index
/// is also its operator index for error messages; the sink's is `steps.len()`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GuestTask {
    /// The steps, each reading only earlier ones.
    pub steps: Vec<GuestStep>,
    /// Consumes the last step's records and emits output batches.
    pub sink: Call,
    /// Number of shuffle buckets the sink writes (0 when the sink is not a shuffle write).
    pub buckets: u32,
    /// The task's partition within its stage (for per-partition seeds and offsets).
    pub partition: u32,
}

/// One step of a [`GuestTask`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum GuestStep {
    /// Records decoded from task inputs (by input index of the guest ABI).
    Source {
        /// The decoder.
        call: Call,
        /// The inputs it reads.
        inputs: Vec<u32>,
    },
    /// A narrow operator over the records of an earlier step.
    Op {
        /// The operator.
        call: Call,
        /// The step it reads.
        from: u32,
    },
    /// The records of several earlier steps combined into one stream.
    Merge {
        /// The combiner (a concatenation, a cogroup, a reduce side, a product).
        call: Call,
        /// The steps it reads, in order.
        from: Vec<u32>,
    },
}

impl GuestStep {
    /// The step's call.
    pub fn call(&self) -> &Call {
        match self {
            GuestStep::Source { call, .. }
            | GuestStep::Op { call, .. }
            | GuestStep::Merge { call, .. } => call,
        }
    }
}

impl GuestTask {
    /// The label of operator number `index` as reported through `task_started`'s cell.
    pub fn label(&self, index: u32) -> Option<&str> {
        let i = index as usize;
        match self.steps.get(i) {
            Some(step) => Some(&step.call().label),
            None if i == self.steps.len() => Some(&self.sink.label),
            None => None,
        }
    }
}

/// One accumulator's total change.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct AccumulatorUpdate {
    /// The accumulator, numbered by the driver.
    pub id: u64,
    /// How much is added.
    pub value: AccumulatorValue,
}

/// An accumulator's value.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum AccumulatorValue {
    /// An unsigned count (wraps on overflow).
    U64(u64),
    /// A signed sum (wraps on overflow).
    I64(i64),
    /// A floating-point sum.
    F64(f64),
}

impl AccumulatorValue {
    /// Add `other`, which must be of the same kind (one accumulator has one type; updates of
    /// another kind are ignored).
    pub fn add(&mut self, other: &AccumulatorValue) {
        match (self, other) {
            (AccumulatorValue::U64(a), AccumulatorValue::U64(b)) => *a = a.wrapping_add(*b),
            (AccumulatorValue::I64(a), AccumulatorValue::I64(b)) => *a = a.wrapping_add(*b),
            (AccumulatorValue::F64(a), AccumulatorValue::F64(b)) => *a += b,
            _ => {}
        }
    }
}

/// Add `more` into `into`, by accumulator.
pub fn merge_updates(into: &mut Vec<AccumulatorUpdate>, more: &[AccumulatorUpdate]) {
    for u in more {
        match into.iter_mut().find(|t| t.id == u.id) {
            Some(total) => total.value.add(&u.value),
            None => into.push(*u),
        }
    }
}

/// A line-aligned piece of a text or CSV file, as handed to the guest.
///
/// Layout: `file_len: u32 LE`, `file` (UTF-8), `first_line: u64 LE` (1-based line number of the
/// chunk's first line, 0 if unknown), `header_len: u32 LE`, `header` (the file's CSV header
/// record, for the first chunk of a CSV split that does not start the file; else empty), then the
/// data to the end of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextChunk<'a> {
    /// The file's path relative to the data directory, for error messages.
    pub file: &'a str,
    /// Line number of the first line in `data` (1-based), or 0 when unknown (a later split of a
    /// large text file).
    pub first_line: u64,
    /// The CSV file's header record (with its line ending) when `data` does not start the file
    /// and is the first chunk of its split; empty otherwise.
    pub header: &'a [u8],
    /// Whole lines (the last one may lack its line ending only at end of file).
    pub data: &'a [u8],
}

impl<'a> TextChunk<'a> {
    /// Write the fields before the data into `out` (the data is appended after them).
    pub fn write_header(out: &mut Vec<u8>, file: &str, first_line: u64, header: &[u8]) {
        out.extend_from_slice(&(file.len() as u32).to_le_bytes());
        out.extend_from_slice(file.as_bytes());
        out.extend_from_slice(&first_line.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(header);
    }

    /// Parse a batch; `None` if the layout is broken.
    pub fn decode(batch: &'a [u8]) -> Option<TextChunk<'a>> {
        let (file_len, rest) = batch.split_first_chunk::<4>()?;
        let (file, rest) = rest.split_at_checked(u32::from_le_bytes(*file_len) as usize)?;
        let file = std::str::from_utf8(file).ok()?;
        let (first_line, rest) = rest.split_first_chunk::<8>()?;
        let (header_len, rest) = rest.split_first_chunk::<4>()?;
        let (header, data) = rest.split_at_checked(u32::from_le_bytes(*header_len) as usize)?;
        Some(TextChunk { file, first_line: u64::from_le_bytes(*first_line), header, data })
    }

    /// Offset of `data` in the batch this chunk was decoded from.
    pub fn data_offset(&self, batch: &[u8]) -> usize {
        batch.len() - self.data.len()
    }
}

/// Options of a CSV source, chosen by the user with [`CsvOptions`] builders.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// Field delimiter (default `,`).
    pub delimiter: u8,
    /// Field values read as missing (`None` for `Option` fields). Default: the empty string only.
    pub null_values: Vec<String>,
    /// Skip rows that do not parse (and count them) instead of failing the job.
    pub skip_bad_rows: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { delimiter: b',', null_values: Vec::new(), skip_bad_rows: false }
    }
}

impl CsvOptions {
    /// Default options: comma-separated, no null markers besides empty fields, bad rows fail.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use another field delimiter, e.g. `b'\t'`.
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Treat fields equal to `marker` (e.g. `"NA"`) as missing values.
    pub fn null_value(mut self, marker: impl Into<String>) -> Self {
        self.null_values.push(marker.into());
        self
    }

    /// Skip rows that fail to parse instead of failing the job; the number skipped and the first
    /// error are reported in the job log.
    pub fn skip_bad_rows(mut self) -> Self {
        self.skip_bad_rows = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_chunk_round_trips() {
        let mut buf = Vec::new();
        TextChunk::write_header(&mut buf, "dir/a.csv", 42, b"x,y\n");
        buf.extend_from_slice(b"one\ntwo\n");
        let chunk = TextChunk::decode(&buf).unwrap();
        assert_eq!(
            chunk,
            TextChunk { file: "dir/a.csv", first_line: 42, header: b"x,y\n", data: b"one\ntwo\n" }
        );
        assert_eq!(&buf[chunk.data_offset(&buf)..], b"one\ntwo\n");
    }

    #[test]
    fn broken_text_chunk_is_rejected() {
        assert_eq!(TextChunk::decode(&[1, 0]), None);
        assert_eq!(TextChunk::decode(&[9, 0, 0, 0, b'a']), None);
        // A header length past the end of the batch.
        let mut buf = Vec::new();
        TextChunk::write_header(&mut buf, "a", 1, b"");
        let at = buf.len() - 4;
        buf[at] = 9;
        assert_eq!(TextChunk::decode(&buf), None);
    }
}
