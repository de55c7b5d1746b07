//! What goes into a task and what comes out: the [`BatchSource`]s a task reads its inputs from,
//! and the [`OutputSpec`] that says what becomes of the batches it emits.
//!
//! Output becomes visible only if the task succeeds: batches are handed back, map outputs are
//! kept by the shuffle store, a part file is committed into its staging directory. A task that
//! fails leaves nothing.

use crate::error::TaskError;
use bytes::Bytes;
use std::collections::VecDeque;
use weft_abi::task::LostOutput;
use weft_storage::PartWriter;
use weft_storage::shuffle_store::{
    BATCH_OVERHEAD, MapOutputReceipt, MapOutputWriter, ShuffleError,
};

/// Why an input could not deliver its next batch.
#[derive(Debug, Clone, PartialEq)]
pub enum InputError {
    /// The data cannot be read as it is (a file vanished, a gzip stream is corrupt): another
    /// attempt would fail the same way.
    Read(String),
    /// A map output could not be fetched from where it was (its node went away, or no longer has
    /// it, or sent nothing for a while): worth another attempt once it has been computed again.
    Fetch {
        /// The output that could not be fetched, and where it was asked for, when known.
        lost: Option<LostOutput>,
        /// What happened.
        message: String,
    },
    /// The task's deadline came while it waited for input that was arriving: the task ran out
    /// of time, which is not the sender's fault.
    Deadline,
}

/// Where one of a task's inputs comes from. Called from inside the sandbox's host functions, on
/// the task's thread.
pub trait BatchSource: Send {
    /// The next batch, or `None` at the end.
    fn next_batch(&mut self) -> Result<Option<Bytes>, InputError>;
}

/// Batches already in memory.
pub struct VecSource(VecDeque<Bytes>);

impl VecSource {
    /// A source yielding `batches` in order.
    pub fn new(batches: impl IntoIterator<Item = Bytes>) -> Self {
        VecSource(batches.into_iter().collect())
    }
}

impl BatchSource for VecSource {
    fn next_batch(&mut self) -> Result<Option<Bytes>, InputError> {
        Ok(self.0.pop_front())
    }
}

impl BatchSource for weft_storage::input::SplitReader {
    fn next_batch(&mut self) -> Result<Option<Bytes>, InputError> {
        weft_storage::input::SplitReader::next_batch(self).map_err(InputError::Read)
    }
}

/// What to do with what a task emits.
// One per task, moved once: boxing the writer would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum OutputSpec {
    /// Keep the batches (results for the driver), failing the task once they add up to more
    /// than `limit` bytes.
    Batches {
        /// Most bytes kept.
        limit: u64,
    },
    /// Shuffle buckets, written to the shuffle store as they come.
    Buckets(MapOutputWriter),
    /// One part of a staged output directory.
    Part(Box<dyn PartWriter>),
}

/// What a successful task produced.
#[derive(Debug)]
pub enum TaskOutput {
    /// Emitted batches, in order.
    Batches(Vec<Bytes>),
    /// The map output, now in the shuffle store.
    Buckets(MapOutputReceipt),
    /// Bytes written to the part.
    Part(u64),
}

impl TaskOutput {
    /// The batches for the driver (none for other outputs).
    pub fn into_batches(self) -> Vec<Bytes> {
        match self {
            TaskOutput::Batches(b) => b,
            TaskOutput::Buckets(_) | TaskOutput::Part(_) => Vec::new(),
        }
    }
}

/// The output of a task while it runs.
pub(crate) enum OutputSink {
    Batches { batches: Vec<Bytes>, bytes: u64, limit: u64 },
    Buckets(MapOutputWriter),
    Part(Box<dyn PartWriter>),
}

impl OutputSink {
    pub(crate) fn open(spec: OutputSpec) -> OutputSink {
        match spec {
            OutputSpec::Batches { limit } => {
                OutputSink::Batches { batches: Vec::new(), bytes: 0, limit }
            }
            OutputSpec::Buckets(writer) => OutputSink::Buckets(writer),
            OutputSpec::Part(writer) => OutputSink::Part(writer),
        }
    }

    pub(crate) fn emit(&mut self, channel: u32, batch: &[u8]) -> Result<(), TaskError> {
        match self {
            // Empty batches carry nothing, and are not kept.
            _ if batch.is_empty() => {}
            OutputSink::Batches { batches, bytes, limit } => {
                // Charged what keeping a batch costs, so that tiny ones cannot add up unseen.
                *bytes += batch.len() as u64 + BATCH_OVERHEAD;
                if *bytes > *limit {
                    return Err(TaskError::ResultTooLarge { limit: *limit });
                }
                batches.push(Bytes::copy_from_slice(batch));
            }
            OutputSink::Buckets(writer) => writer.emit(channel, batch).map_err(|e| match e {
                ShuffleError::NoSuchBucket { .. } => TaskError::Output(e.to_string()),
                _ => TaskError::Spill(e.to_string()),
            })?,
            OutputSink::Part(writer) => {
                writer.write(batch).map_err(|e| TaskError::Output(e.to_string()))?
            }
        }
        Ok(())
    }

    /// The task succeeded: make its output visible.
    pub(crate) fn finish(self) -> Result<TaskOutput, TaskError> {
        Ok(match self {
            OutputSink::Batches { batches, .. } => TaskOutput::Batches(batches),
            OutputSink::Buckets(writer) => {
                TaskOutput::Buckets(writer.finish().map_err(|e| TaskError::Spill(e.to_string()))?)
            }
            OutputSink::Part(writer) => {
                TaskOutput::Part(writer.commit().map_err(|e| TaskError::Output(e.to_string()))?)
            }
        })
    }
}
