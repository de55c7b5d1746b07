//! The embedded executor behind `weft run`: a pool of worker threads on this machine.
//!
//! Each worker runs one task at a time in a fresh sandbox of the job's module (compiled once),
//! through the same [`run_spec`] as a node. Map outputs stay in this process's
//! [`ShuffleStore`] until their action ends. Slots are counted by the same [`SlotLedger`] as on
//! the cluster, with one node: this machine.

use crate::executor::{
    Executor, ExecutorError, ExecutorEvent, SlotGrant, TaskOutcome, TaskSuccess,
};
use crate::slots::SlotLedger;
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use weft_abi::task::{TaskFailure, TaskSpec};
use weft_sandbox::{BoundUdf, JobModule, SpecOutcome, TaskHost, run_spec};
use weft_storage::Storage;
use weft_storage::shuffle_store::ShuffleStore;

/// The embedded engine's one node.
pub const LOCAL_NODE: &str = "local";

/// A pool of worker threads running tasks of one job module.
pub struct LocalExecutor {
    job: String,
    ledger: SlotLedger,
    shuffle: Arc<ShuffleStore>,
    work: Option<Sender<TaskSpec>>,
    outcomes: Receiver<TaskOutcome>,
    /// Outcomes of tasks that could not be handed to a worker.
    unstarted: VecDeque<TaskOutcome>,
    threads: Vec<JoinHandle<()>>,
}

impl LocalExecutor {
    /// Start `workers` threads (at least one) running tasks of job `job`'s `module`, reading and
    /// writing `storage`; `udfs` are the UDF modules the job may bind, compiled, by hash.
    pub fn new(
        job: &str,
        module: JobModule,
        storage: Arc<dyn Storage>,
        workers: usize,
        broadcasts: Arc<crate::broadcasts::BroadcastStore>,
        udfs: HashMap<String, JobModule>,
    ) -> LocalExecutor {
        let modules = Arc::new(Modules { job: module, udfs });
        let workers = workers.max(1);
        let shuffle = Arc::new(ShuffleStore::in_memory());
        let host = Arc::new(TaskHost {
            storage,
            shuffle: shuffle.clone(),
            node_id: LOCAL_NODE.into(),
            shuffle_addr: String::new(),
            remote: None,
            broadcasts,
        });
        let (work_tx, work_rx) = channel::<TaskSpec>();
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, outcomes) = channel::<TaskOutcome>();
        let threads = (0..workers)
            .map(|i| {
                let (modules, host) = (modules.clone(), host.clone());
                let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
                std::thread::Builder::new()
                    .name(format!("weft-worker-{i}"))
                    .spawn(move || worker(modules, host, work_rx, done_tx))
                    .expect("cannot start a worker thread")
            })
            .collect();
        let mut ledger = SlotLedger::default();
        ledger.set_node(LOCAL_NODE, workers as u32);
        LocalExecutor {
            job: job.to_string(),
            ledger,
            shuffle,
            work: Some(work_tx),
            outcomes,
            unstarted: VecDeque::new(),
            threads,
        }
    }
}

/// The job's module and the UDF modules its tasks may call.
struct Modules {
    job: JobModule,
    udfs: HashMap<String, JobModule>,
}

impl Modules {
    /// The UDF modules `spec` names, in its slots.
    fn bound(&self, spec: &TaskSpec) -> Result<Vec<BoundUdf>, weft_sandbox::TaskError> {
        let bind = |r: &weft_abi::udf::UdfModuleRef| {
            let module = self.udfs.get(&r.hash).ok_or_else(|| {
                weft_sandbox::TaskError::Setup(format!("UDF module {} is not loaded", r.name))
            })?;
            Ok(BoundUdf { slot: r.slot, name: r.name.clone(), module: module.clone() })
        };
        spec.udfs.iter().map(bind).collect()
    }
}

fn worker(
    module: Arc<Modules>,
    host: Arc<TaskHost>,
    work: Arc<Mutex<Receiver<TaskSpec>>>,
    done: Sender<TaskOutcome>,
) {
    loop {
        let next = work.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(spec) = next else { break };
        let outcome = run_caught(&module, &spec, &host);
        if done.send(outcome).is_err() {
            break;
        }
    }
}

/// Run one task; a panic here would be a bug in the host, not the job: it is reported as the
/// task's failure instead of leaving the action waiting forever.
fn run_caught(modules: &Modules, spec: &TaskSpec, host: &TaskHost) -> TaskOutcome {
    let run = || run_spec(&modules.job, spec, host, modules.bound(spec)?);
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
            Err(weft_sandbox::TaskError::Setup(format!("internal error: {}", panic_text(&panic))))
        });
    TaskOutcome {
        id: spec.id.clone(),
        node: host.node_id.clone(),
        result: result.map(success).map_err(|e| e.to_failure()),
    }
}

/// A finished task as the action loop takes it.
fn success(outcome: SpecOutcome) -> TaskSuccess {
    let report = outcome.report;
    TaskSuccess {
        batches: report.output.into_batches(),
        map_output: outcome.map_output,
        bad_rows: report.bad_rows,
        accumulators: report.accumulators,
        stdout: report.stdout,
        stderr: report.stderr,
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a worker thread panicked".into())
}

impl Executor for LocalExecutor {
    fn capacity(&self) -> u32 {
        self.ledger.capacity()
    }

    fn try_reserve(&mut self) -> Option<SlotGrant> {
        self.ledger.try_acquire(&self.job, Instant::now()).map(|node| SlotGrant { node })
    }

    fn unreserve(&mut self, slot: SlotGrant) {
        self.ledger.release(&slot.node, &self.job, Instant::now());
    }

    fn launch(&mut self, slot: SlotGrant, task: TaskSpec) {
        let id = task.id.clone();
        let sent = self.work.as_ref().is_some_and(|w| w.send(task).is_ok());
        if !sent {
            // Nothing will answer for this task: say so now, as its outcome.
            let failure = TaskFailure::infrastructure("the worker threads are gone");
            self.unstarted.push_back(TaskOutcome { id, node: slot.node, result: Err(failure) });
        }
    }

    fn next_event(&mut self, timeout: Duration) -> Result<Option<ExecutorEvent>, ExecutorError> {
        if let Some(outcome) = self.unstarted.pop_front() {
            self.ledger.release(&outcome.node, &self.job, Instant::now());
            return Ok(Some(ExecutorEvent::Finished(outcome)));
        }
        match self.outcomes.recv_timeout(timeout) {
            Ok(outcome) => {
                self.ledger.release(&outcome.node, &self.job, Instant::now());
                Ok(Some(ExecutorEvent::Finished(outcome)))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                Err(ExecutorError::Gone("the worker threads are gone".into()))
            }
        }
    }

    fn action_ended(&mut self, job: &str, action: u32) {
        self.shuffle.release(job, action);
    }

    fn release_cached(&mut self, job: &str, dataset: weft_abi::plan::DatasetId) {
        self.shuffle.release_stage(job, weft_abi::task::CACHE_ACTION, dataset.0 as u32);
    }
}

impl Drop for LocalExecutor {
    fn drop(&mut self) {
        self.work = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
