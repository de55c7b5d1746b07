//! What a task is, as the coordinator hands it to whoever runs it: the one description of a
//! task's inputs and output, used by the planner, the action loop, the embedded engine, the wire
//! protocol and the node alike.
//!
//! A task is one partition of one stage of one action of a job ([`TaskId`]). It runs one
//! [`GuestTask`] over its [`TaskInput`]s — one per input index of the guest ABI, so that a stage
//! may read several shuffles — and leaves its output as its [`TaskOutput`] says. A reduce task is
//! sent only the pieces of its own bucket ([`BucketPiece`]), never the whole map-output matrix.

use crate::guest::GuestTask;
use crate::plan::InlineBatch;
use serde::{Deserialize, Serialize};

/// One attempt at one partition of one stage of one action of a job. Every outcome carries it
/// back, so that an outcome that does not match what is running now (an earlier action's, an
/// older attempt's) is recognised and dropped.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskId {
    /// The job.
    pub job: String,
    /// The action within the job, counted from 1.
    pub action: u32,
    /// The stage within the action.
    pub stage: u32,
    /// How many times the stage was submitted again before this attempt (lost map outputs send a
    /// finished stage back), from 0.
    pub stage_attempt: u32,
    /// The partition.
    pub partition: u32,
    /// The attempt at this partition, from 0.
    pub attempt: u32,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} action {} stage {} task {} (attempt {})",
            self.job, self.action, self.stage, self.partition, self.attempt
        )
    }
}

/// Limits the task's sandbox runs under.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskLimits {
    /// Wall-clock time the task may run, in milliseconds.
    pub timeout_ms: u64,
    /// Linear memory of its instance, in bytes.
    pub memory_bytes: u64,
    /// Most bytes of results it may return for the driver.
    pub result_bytes: u64,
}

/// A task, complete: everything needed to run it anywhere the module is.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// Which attempt of which task.
    pub id: TaskId,
    /// The module's content address (SHA-256, hex).
    pub module_hash: String,
    /// Sandbox limits.
    pub limits: TaskLimits,
    /// The guest's work.
    pub guest: GuestTask,
    /// The task's inputs, by input index.
    pub inputs: Vec<TaskInput>,
    /// What becomes of what it emits.
    pub output: TaskOutput,
    /// The job's broadcast values, by reference (the values reach a node once, apart).
    #[serde(default)]
    pub broadcasts: Vec<BroadcastRef>,
    /// The data root of the tenant the job runs for: a directory name inside the node's data
    /// directory, or an absolute path (a tenant given its own `--data-dir`). `None`: the node's
    /// data directory (jobs submitted with the admin token). The node checks it and confines
    /// every path of the task to it.
    #[serde(default)]
    pub data_root: Option<String>,
    /// The UDF modules the job bound, by slot: the node has each compiled (fetched once, by
    /// hash) before the task starts, and the task's UDF calls name their slot.
    #[serde(default)]
    pub udfs: Vec<crate::udf::UdfModuleRef>,
}

/// A broadcast value by reference: what a task's description carries instead of the value.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BroadcastRef {
    /// Its id in the job.
    pub id: u64,
    /// The SHA-256 (hex) of its bytes, by which nodes fetch and check it.
    pub hash: String,
    /// How many bytes.
    pub len: u64,
}

/// One input of a task.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum TaskInput {
    /// Nothing: an empty partition.
    Empty,
    /// Records that travelled inside the plan.
    Inline(InlineBatch),
    /// A piece of a file in the job's storage.
    Split(FileSplit),
    /// One bucket of every map output of a shuffle.
    Shuffle(ShuffleRead),
}

/// How a file's lines are grouped into chunks.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Lines of text.
    Text,
    /// CSV records (a quoted field may span lines).
    Csv,
}

/// A piece of one input file, by its path in the job's storage.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FileSplit {
    /// The path, relative to the storage root (as listed when the splits were planned).
    pub path: String,
    /// First byte (plain files only).
    pub start: u64,
    /// End of the range, exclusive; `None` to the end of the file.
    pub end: Option<u64>,
    /// Decompress with gzip (the file is read whole).
    pub gzip: bool,
    /// Text or CSV.
    pub format: FileFormat,
    /// Line number of the split's first line, or 0 when unknown (a later split of a text file).
    pub first_line: u64,
    /// CSV splits other than the first: length of the header record at the file's start, which
    /// is sent ahead of the split's records. 0 otherwise.
    pub header_len: u64,
}

/// The action number under which a job's cached blocks are kept: they outlive every action and
/// go when the job ends. A block's [`MapOutputId`] has this action, the cached dataset's id as
/// its stage and the partition.
pub const CACHE_ACTION: u32 = 0;

/// Names one map task's output wherever it is kept.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapOutputId {
    /// The job.
    pub job: String,
    /// The action within the job.
    pub action: u32,
    /// The map stage within the action.
    pub stage: u32,
    /// The map partition.
    pub partition: u32,
}

/// An unguessable secret the coordinator issues per job: map outputs are stored with it, and a
/// bucket is served only to a fetch that presents it, so that no job — nor any other holder of a
/// node certificate — can read another job's shuffle data by guessing its [`MapOutputId`].
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Hash)]
pub struct ShuffleKey(pub String);

impl std::fmt::Debug for ShuffleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShuffleKey(…)")
    }
}

/// Where a map task's output is kept, as it reports it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MapOutput {
    /// The output.
    pub id: MapOutputId,
    /// The node that holds it (`local` on the embedded engine).
    pub node_id: String,
    /// Where that node serves buckets to other nodes (empty on the embedded engine).
    pub shuffle_addr: String,
    /// Bytes of each bucket.
    pub bucket_bytes: Vec<u64>,
}

/// One map output's share of a reduce task's bucket.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct BucketPiece {
    /// The map output.
    pub map: MapOutputId,
    /// The node holding it.
    pub node_id: String,
    /// Its shuffle service.
    pub shuffle_addr: String,
    /// Bytes of this bucket in it (0: nothing to fetch).
    pub bytes: u64,
}

impl BucketPiece {
    /// The lost output a failure to read this piece names.
    pub fn lost(&self) -> LostOutput {
        LostOutput { map: self.map.clone(), node: self.node_id.clone() }
    }
}

/// One bucket of every map output of a shuffle: a reduce task's input.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ShuffleRead {
    /// The bucket, which is the reduce task's partition.
    pub bucket: u32,
    /// The job's shuffle key, presented to the nodes that hold the pieces.
    pub key: ShuffleKey,
    /// Every map task's piece of the bucket, in map partition order.
    pub pieces: Vec<BucketPiece>,
}

/// What becomes of what a task emits.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum TaskOutput {
    /// Batches returned for the driver.
    Driver,
    /// Shuffle buckets, kept where the task ran.
    Buckets {
        /// How many buckets.
        buckets: u32,
        /// Under which id.
        id: MapOutputId,
        /// The job's shuffle key, which fetches must present.
        key: ShuffleKey,
    },
    /// One part of an output directory being written.
    Part(PartTarget),
}

/// Where a task writes its part of a staged output directory.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PartTarget {
    /// The staging directory, relative to the storage root; it becomes the output directory when
    /// every part is there.
    pub staging: String,
    /// The part's number: the task's partition.
    pub partition: u32,
    /// The attempt writing it (each attempt writes a file of its own, renamed on success).
    pub attempt: u32,
}

/// Why a task attempt failed, as its outcome reports it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TaskFailure {
    /// What kind of failure, which decides whether it is retried.
    pub kind: FailureKind,
    /// What happened, for the user.
    pub message: String,
}

/// What kind of failure: whether another attempt could succeed, and what to do first.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum FailureKind {
    /// The job's code or data: a panic, a bad row, a deadline, the memory limit, results over
    /// the limit. The same task would fail the same way; the action fails at once.
    Job,
    /// The machine's: a sandbox that could not start, a node lost, a connection that broke.
    /// Another attempt, elsewhere if possible, may succeed.
    Infrastructure,
    /// The node had no free slot: the task did not run at all, and is launched again without
    /// counting an attempt.
    Busy,
    /// A map output could not be fetched from the node that held it: compute what that node
    /// held again, then retry.
    FetchFailed(LostOutput),
}

/// A map output that could not be had, and the node it was expected on.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LostOutput {
    /// The output.
    pub map: MapOutputId,
    /// The node that was asked for it.
    pub node: String,
}

impl FailureKind {
    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, FailureKind::Job)
    }
}

impl TaskFailure {
    /// A failure of the job's own making.
    pub fn job(message: impl Into<String>) -> TaskFailure {
        TaskFailure { kind: FailureKind::Job, message: message.into() }
    }

    /// A failure of the machine's making.
    pub fn infrastructure(message: impl Into<String>) -> TaskFailure {
        TaskFailure { kind: FailureKind::Infrastructure, message: message.into() }
    }
}
