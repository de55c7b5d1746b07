//! The cluster's [`Executor`]: one job's tasks on the nodes' slots.
//!
//! Slots come from the cluster's one [`SlotLedger`](crate::slots::SlotLedger) (in the
//! [`NodePool`]), shared with every other job. A launched task becomes an async request on its
//! node's [`NodeLink`], with a deadline of the task's own timeout plus [`TASK_GRACE`] (to fetch
//! and compile the module); when it ends — however it ends, and whether or not this job still
//! wants it — its slot goes back to the ledger and every job hears that slots changed. Its
//! outcome comes back on this executor's channel, where the action loop sorts out what is stale.

use super::live::LiveJob;
use super::nodes::NodePool;
use crate::executor::{Executor, ExecutorError, ExecutorEvent, SlotGrant, TaskOutcome};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};
use weft_abi::task::{FailureKind, TaskFailure, TaskSpec};

/// Time a task may take on top of its own timeout: fetching and compiling the module on a node
/// that has not seen it.
pub const TASK_GRACE: Duration = Duration::from_secs(30);

/// Runs one job's tasks on the cluster's nodes.
pub(crate) struct RemoteExecutor {
    pool: Arc<NodePool>,
    job: Arc<LiveJob>,
    runtime: tokio::runtime::Handle,
    tx: Sender<ExecutorEvent>,
    rx: Receiver<ExecutorEvent>,
    listener: u64,
    slots_changed: Arc<AtomicBool>,
    /// The tenant's data root every task is told.
    data_root: Option<String>,
}

impl RemoteExecutor {
    pub(crate) fn new(
        pool: Arc<NodePool>,
        job: Arc<LiveJob>,
        runtime: tokio::runtime::Handle,
        data_root: Option<String>,
    ) -> RemoteExecutor {
        let (tx, rx) = channel();
        let (listener, slots_changed) = pool.listen(tx.clone());
        RemoteExecutor { pool, job, runtime, tx, rx, listener, slots_changed, data_root }
    }

    fn check_cancelled(&self) -> Result<(), ExecutorError> {
        if self.job.is_cancelled() { Err(ExecutorError::Cancelled) } else { Ok(()) }
    }
}

impl Drop for RemoteExecutor {
    fn drop(&mut self) {
        self.pool.unlisten(self.listener);
        self.pool.ledger().stop_waiting(&self.job.id);
    }
}

impl Executor for RemoteExecutor {
    fn capacity(&self) -> u32 {
        self.pool.ledger().capacity()
    }

    fn try_reserve(&mut self) -> Option<SlotGrant> {
        if self.job.is_cancelled() {
            return None;
        }
        let node = self.pool.ledger().try_acquire(&self.job.id, Instant::now())?;
        Some(SlotGrant { node })
    }

    fn stop_waiting(&mut self) {
        self.pool.ledger().stop_waiting(&self.job.id);
    }

    fn unreserve(&mut self, slot: SlotGrant) {
        self.pool.ledger().release(&slot.node, &self.job.id, Instant::now());
        self.pool.broadcast(ExecutorEvent::SlotsChanged);
    }

    fn launch(&mut self, slot: SlotGrant, mut task: TaskSpec) {
        task.data_root.clone_from(&self.data_root);
        self.job.task_launched();
        let node = slot.node;
        let pool = self.pool.clone();
        let tx = self.tx.clone();
        let job = self.job.id.clone();
        let timeout = Duration::from_millis(task.limits.timeout_ms) + TASK_GRACE;
        let link = pool.link(&node);
        self.runtime.spawn(async move {
            let id = task.id.clone();
            let result = match link {
                Some(link) => link.run_task(task, timeout).await,
                None => Err(TaskFailure::infrastructure(format!("node {node} is gone"))),
            };
            // The slot is free again whatever became of the task; a node that failed it for the
            // machine's reasons (or could not serve its input) is passed over for a moment.
            {
                let mut ledger = pool.ledger();
                ledger.release(&node, &job, Instant::now());
                match &result {
                    Err(f) if matches!(f.kind, FailureKind::Infrastructure | FailureKind::Busy) => {
                        ledger.pause(&node, Instant::now())
                    }
                    Err(TaskFailure { kind: FailureKind::FetchFailed(lost), .. }) => {
                        ledger.pause(&lost.node, Instant::now())
                    }
                    _ => {}
                }
            }
            pool.broadcast(ExecutorEvent::SlotsChanged);
            let _ = tx.send(ExecutorEvent::Finished(TaskOutcome { id, node, result }));
        });
    }

    fn next_event(&mut self, timeout: Duration) -> Result<Option<ExecutorEvent>, ExecutorError> {
        self.check_cancelled()?;
        match self.rx.recv_timeout(timeout) {
            Ok(event) => {
                if event == ExecutorEvent::SlotsChanged {
                    self.slots_changed.store(false, Ordering::Release);
                }
                self.check_cancelled()?;
                Ok(Some(event))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                Err(ExecutorError::Gone("the executor's channel closed".into()))
            }
        }
    }

    fn action_ended(&mut self, job: &str, action: u32) {
        for link in self.pool.links() {
            let job = job.to_string();
            self.runtime.spawn(async move { link.release(job, action, None).await });
        }
    }

    fn release_cached(&mut self, job: &str, dataset: weft_abi::plan::DatasetId) {
        let stage = Some(dataset.0 as u32);
        for link in self.pool.links() {
            let job = job.to_string();
            self.runtime
                .spawn(async move { link.release(job, weft_abi::task::CACHE_ACTION, stage).await });
        }
    }
}
