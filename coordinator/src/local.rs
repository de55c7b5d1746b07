//! The embedded executor behind `weft run`: a pool of worker threads on this machine.
//!
//! Each worker runs one task at a time in a fresh sandbox of the job's module (compiled once).
//! Map outputs stay in memory, per map task and bucket, until the action ends. The action loop
//! itself is [`crate::action::run_action`], shared with the cluster.

use crate::action::{
    Completion, Executor, Finished, Launch, LaunchInput, LaunchOutput, run_action,
};
use crate::scheduler::{TaskFailure, TaskId};
use bytes::Bytes;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use weft::abi::GuestTask;
use weft::plan::{ActionReply, ActionRequest};
use weft_runtime::input::SplitReader;
use weft_runtime::{
    BatchSource, DataDir, JobModule, OutputSpec, TaskError, TaskOutput, TaskReport, VecSource,
};

struct Work {
    id: TaskId,
    guest: Arc<GuestTask>,
    input: Box<dyn BatchSource>,
    output: OutputSpec,
}

type Outcome = (TaskId, Result<TaskReport, TaskError>);

/// A map task's buckets, kept in memory.
pub type LocalMapOutput = Arc<Vec<Vec<Bytes>>>;

/// A pool of worker threads running tasks of one job module.
pub struct LocalCluster {
    data: DataDir,
    workers: usize,
    running: usize,
    split_bytes: Option<u64>,
    work: Option<Sender<Work>>,
    outcomes: Receiver<Outcome>,
    threads: Vec<JoinHandle<()>>,
}

impl LocalCluster {
    /// Start `workers` threads (at least one) running tasks of `module`, reading and writing
    /// inside `data`.
    pub fn new(module: JobModule, data: DataDir, workers: usize) -> LocalCluster {
        let workers = workers.max(1);
        let (work_tx, work_rx) = channel::<Work>();
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, outcomes) = channel::<Outcome>();
        let threads = (0..workers)
            .map(|i| {
                let module = module.clone();
                let work_rx = work_rx.clone();
                let done_tx = done_tx.clone();
                std::thread::Builder::new()
                    .name(format!("weft-worker-{i}"))
                    .spawn(move || worker(module, work_rx, done_tx))
                    .expect("cannot start a worker thread")
            })
            .collect();
        LocalCluster {
            data,
            workers,
            running: 0,
            split_bytes: None,
            work: Some(work_tx),
            outcomes,
            threads,
        }
    }

    /// Use `bytes` as the largest split of large text files (default: 16 MiB).
    pub fn with_split_bytes(mut self, bytes: u64) -> LocalCluster {
        self.split_bytes = Some(bytes.max(1));
        self
    }

    /// Run one action to completion and describe the outcome for the driver.
    pub fn run_action(&mut self, request: &ActionRequest) -> ActionReply {
        let data = self.data.clone();
        let split_bytes = self.split_bytes;
        run_action(self, &data, split_bytes, request)
    }
}

fn worker(module: JobModule, work: Arc<Mutex<Receiver<Work>>>, done: Sender<Outcome>) {
    loop {
        let next = work.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(work) = next else { break };
        // A panic here would be a bug in the host, not the job; report it as this task's
        // failure instead of leaving the action waiting forever.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            module.run_task(&work.guest, work.input, work.output)
        }))
        .unwrap_or_else(|panic| {
            Err(TaskError::Setup(format!("internal error: {}", panic_text(&panic))))
        });
        if done.send((work.id, result)).is_err() {
            break;
        }
    }
}

impl Executor for LocalCluster {
    type MapOutput = LocalMapOutput;

    fn parallelism(&self) -> u32 {
        self.workers as u32
    }

    fn free_slots(&self) -> usize {
        self.workers - self.running
    }

    fn launch(&mut self, launch: Launch<LocalMapOutput>) -> Result<(), String> {
        let input: Box<dyn BatchSource> = match launch.input {
            LaunchInput::Inline(batch) => Box::new(VecSource::new(batch.map(|b| Bytes::from(b.0)))),
            LaunchInput::Split(split) => Box::new(SplitReader::new(split.into_iter().collect())),
            LaunchInput::Shuffle { bucket, maps } => Box::new(VecSource::new(
                maps.iter()
                    .flat_map(|buckets| buckets.get(bucket as usize).cloned().unwrap_or_default()),
            )),
        };
        let output = match launch.output {
            LaunchOutput::Driver => OutputSpec::Batches,
            LaunchOutput::Buckets(n) => OutputSpec::Buckets(n),
            LaunchOutput::TextPart { tmp, part } => OutputSpec::TextPart {
                tmp: self.data.root().join(tmp),
                part: self.data.root().join(part),
            },
        };
        let work = Work { id: launch.id, guest: launch.guest, input, output };
        self.work
            .as_ref()
            .expect("open while the cluster lives")
            .send(work)
            .map_err(|_| "the worker threads are gone")?;
        self.running += 1;
        Ok(())
    }

    fn wait(&mut self) -> Result<Completion<LocalMapOutput>, String> {
        let (id, result) =
            self.outcomes.recv().map_err(|_| "the worker threads are gone".to_string())?;
        self.running -= 1;
        let result = match result {
            Ok(report) => {
                let (batches, map_output) = match report.output {
                    TaskOutput::Batches(b) => (b, None),
                    TaskOutput::Buckets(b) => (Vec::new(), Some(Arc::new(b))),
                    TaskOutput::TextPart(_) => (Vec::new(), None),
                };
                Ok(Finished {
                    batches,
                    map_output,
                    bad_rows: report.bad_rows,
                    stdout: report.stdout,
                    stderr: report.stderr,
                })
            }
            Err(e) => Err(TaskFailure { message: e.to_string(), retryable: e.is_retryable() }),
        };
        Ok(Completion { id, result })
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a worker thread panicked".into())
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.work = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
