//! The boundary between the action loop and wherever tasks run: the [`Executor`] trait and what
//! comes back through it.
//!
//! An executor reserves slots, launches [`TaskSpec`]s on them and reports what happens as
//! [`ExecutorEvent`]s. It never decides anything about the action: outcomes of tasks it no
//! longer cares about (an earlier action's, a cancelled one's) are still reported, and the
//! action loop drops them by their [`TaskId`]. The embedded engine ([`crate::local`]) and the
//! cluster ([`crate::cluster`]) implement it; the tests implement a scripted one.

use bytes::Bytes;
use std::time::Duration;
use weft_abi::task::{MapOutput, TaskFailure, TaskId, TaskSpec};

/// A slot reserved for one task on one node, until the task is launched on it or it is given
/// back.
#[derive(Debug, PartialEq, Eq)]
pub struct SlotGrant {
    /// The node the slot is on.
    pub node: String,
}

/// What a successful task produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskSuccess {
    /// Batches for the driver (final stage of a driver action).
    pub batches: Vec<Bytes>,
    /// Where its buckets are (map stages).
    pub map_output: Option<MapOutput>,
    /// Rows a lenient CSV source skipped, with the first error.
    pub bad_rows: Option<(u64, String)>,
    /// What it added to accumulators.
    pub accumulators: Vec<weft_abi::guest::AccumulatorUpdate>,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
}

/// How one launched task ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutcome {
    /// Which attempt of which task (as it was launched).
    pub id: TaskId,
    /// The node it ran on.
    pub node: String,
    /// What it produced, or why it failed.
    pub result: Result<TaskSuccess, TaskFailure>,
}

/// Something that happened where tasks run.
// Nearly every event is a `Finished`: boxing it would add an allocation to each for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorEvent {
    /// A task ended (of this action or not: the action loop sorts them out).
    Finished(TaskOutcome),
    /// A node is gone, and every map output it held with it.
    NodeLost(String),
    /// Slots may have been freed or added (another job's task ended, a node joined): worth
    /// trying to launch again.
    SlotsChanged,
}

/// Why an executor cannot go on at all (not a task's failure).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecutorError {
    /// The job was cancelled.
    #[error("the job was cancelled")]
    Cancelled,
    /// The executor itself is gone (its threads, its cluster).
    #[error("{0}")]
    Gone(String),
}

/// Runs tasks somewhere.
pub trait Executor {
    /// Slots of the machines that are up now: the default partition count of shuffles, and 0
    /// when there is nowhere to run anything.
    fn capacity(&self) -> u32;

    /// Reserve a free slot for this job, if there is one it may take now (fair share decides).
    /// Asking and getting nothing marks the job as waiting for a slot.
    fn try_reserve(&mut self) -> Option<SlotGrant>;

    /// The job no longer waits for a slot (it has nothing ready to run).
    fn stop_waiting(&mut self) {}

    /// Give back a slot that was reserved and not used.
    fn unreserve(&mut self, slot: SlotGrant);

    /// Start `task` on `slot`. Never blocks and never fails: a task that cannot even start is
    /// reported as a failed outcome.
    fn launch(&mut self, slot: SlotGrant, task: TaskSpec);

    /// The next event, waiting at most `timeout`; `None` if nothing happened by then.
    fn next_event(&mut self, timeout: Duration) -> Result<Option<ExecutorEvent>, ExecutorError>;

    /// The action ended: the map outputs it wrote can go. (With
    /// [`CACHE_ACTION`](weft_abi::task::CACHE_ACTION): the job ended, its cached blocks go.)
    fn action_ended(&mut self, job: &str, action: u32);

    /// The job stopped caching `dataset`: its blocks can go.
    fn release_cached(&mut self, job: &str, dataset: weft_abi::plan::DatasetId);
}
