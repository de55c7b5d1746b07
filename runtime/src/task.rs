//! Running one task, or the driver, in a fresh sandbox.
//!
//! A task gets its input from a [`BatchSource`] (file splits, inline records, fetched shuffle
//! buckets) and leaves its output in the form its [`OutputSpec`] asks for. Output becomes visible
//! only if the task succeeds: batches are handed back, a text part file is renamed into place.

use crate::capture::CapturedOutput;
use crate::error::TaskError;
use crate::module::JobModule;
use crate::sandbox::{ActionHandler, DriverIo, Role, TaskIo, classify};
use bytes::Bytes;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;
use wasmtime::Store;
use weft::abi::{EXPORT_ALLOC, EXPORT_RUN_TASK, GuestTask, STATUS_OK};

/// Where a task's input batches come from. Called from inside the sandbox's host functions, on
/// the task's thread; an `Err` fails the task with [`TaskError::Input`].
pub trait BatchSource: Send {
    /// The next batch, or `None` at the end.
    fn next_batch(&mut self) -> Result<Option<Bytes>, String>;

    /// Whether this source's errors are transient (a peer that went away) rather than facts about
    /// the data: they fail the task with [`TaskError::Fetch`], which is retried.
    fn errors_are_transient(&self) -> bool {
        false
    }
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
    fn next_batch(&mut self) -> Result<Option<Bytes>, String> {
        Ok(self.0.pop_front())
    }
}

/// What to do with what a task emits.
#[derive(Debug, Clone)]
pub enum OutputSpec {
    /// Keep the batches (results for the driver).
    Batches,
    /// Keep the batches per shuffle bucket; the task writes `n` buckets.
    Buckets(u32),
    /// Write the emitted text to `tmp`, renamed to `part` on success.
    TextPart {
        /// Where the part is written while the task runs.
        tmp: PathBuf,
        /// Its final name.
        part: PathBuf,
    },
}

/// What a successful task produced.
#[derive(Debug)]
pub enum TaskOutput {
    /// Emitted batches, in order.
    Batches(Vec<Bytes>),
    /// Emitted batches per bucket.
    Buckets(Vec<Vec<Bytes>>),
    /// Bytes written to the part file.
    TextPart(u64),
}

/// The output of a task while it runs.
pub(crate) enum OutputSink {
    Batches(Vec<Bytes>),
    Buckets(Vec<Vec<Bytes>>),
    Text { writer: BufWriter<File>, tmp: PathBuf, part: PathBuf, bytes: u64 },
}

impl OutputSink {
    fn open(spec: OutputSpec) -> Result<OutputSink, TaskError> {
        Ok(match spec {
            OutputSpec::Batches => OutputSink::Batches(Vec::new()),
            OutputSpec::Buckets(n) => OutputSink::Buckets(vec![Vec::new(); n.max(1) as usize]),
            OutputSpec::TextPart { tmp, part } => {
                let file = File::create(&tmp).map_err(|e| {
                    TaskError::Output(format!("cannot create {}: {e}", tmp.display()))
                })?;
                OutputSink::Text {
                    writer: BufWriter::with_capacity(1 << 20, file),
                    tmp,
                    part,
                    bytes: 0,
                }
            }
        })
    }

    pub(crate) fn emit(&mut self, channel: u32, bytes: &[u8]) -> Result<(), TaskError> {
        match self {
            OutputSink::Batches(batches) => batches.push(Bytes::copy_from_slice(bytes)),
            OutputSink::Buckets(buckets) => match buckets.get_mut(channel as usize) {
                Some(bucket) => bucket.push(Bytes::copy_from_slice(bytes)),
                None => {
                    return Err(TaskError::Output(format!(
                        "emitted to bucket {channel} of {}",
                        buckets.len()
                    )));
                }
            },
            OutputSink::Text { writer, tmp, bytes: written, .. } => {
                writer.write_all(bytes).map_err(|e| {
                    TaskError::Output(format!("cannot write {}: {e}", tmp.display()))
                })?;
                *written += bytes.len() as u64;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<TaskOutput, TaskError> {
        Ok(match self {
            OutputSink::Batches(b) => TaskOutput::Batches(b),
            OutputSink::Buckets(b) => TaskOutput::Buckets(b),
            OutputSink::Text { writer, tmp, part, bytes } => {
                let file = writer.into_inner().map_err(|e| {
                    TaskError::Output(format!("cannot write {}: {}", tmp.display(), e.error()))
                })?;
                file.sync_all().map_err(|e| {
                    TaskError::Output(format!("cannot write {}: {e}", tmp.display()))
                })?;
                std::fs::rename(&tmp, &part).map_err(|e| {
                    TaskError::Output(format!("cannot move {} into place: {e}", part.display()))
                })?;
                TaskOutput::TextPart(bytes)
            }
        })
    }

    fn abort(self) {
        if let OutputSink::Text { writer, tmp, .. } = self {
            drop(writer);
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// What a successful task leaves behind besides its output.
#[derive(Debug)]
pub struct TaskReport {
    /// The output, as asked for.
    pub output: TaskOutput,
    /// Rows a lenient CSV source skipped, with the first one's error.
    pub bad_rows: Option<(u64, String)>,
    /// Captured stdout (capped) of the task.
    pub stdout: Vec<u8>,
    /// Captured stderr (capped) of the task.
    pub stderr: Vec<u8>,
}

/// How the driver ended.
#[derive(Debug)]
pub struct DriverReport {
    /// The exit code of `main` (0 when it returned normally).
    pub exit_code: i32,
}

impl JobModule {
    /// Run `task` in a fresh sandbox.
    pub fn run_task(
        &self,
        task: &GuestTask,
        input: Box<dyn BatchSource>,
        output: OutputSpec,
    ) -> Result<TaskReport, TaskError> {
        let encoded = rmp_serde::to_vec(task)
            .map_err(|e| TaskError::Setup(format!("cannot encode the task: {e}")))?;
        let labels = (0..task.ops.len() as u32 + 2)
            .filter_map(|i| task.label(i).map(str::to_string))
            .collect();
        let sink = OutputSink::open(output)?;
        let stdout = CapturedOutput::buffer(self.policy.output_cap);
        let stderr = CapturedOutput::buffer(self.policy.output_cap);
        let io = TaskIo { input, pending: None, output: sink, bad_rows: None, labels };
        let limit = self.policy.task_timeout;
        let mut store =
            self.new_store(Role::Task(io), &["weft-task".to_string()], &stdout, &stderr, limit);
        let outcome = self.call_task(&mut store, &encoded);
        let state = store.into_data();
        let Role::Task(io) = state.role else { unreachable!("a task store holds a task role") };
        match outcome {
            Ok(()) => Ok(TaskReport {
                output: io.output.finish()?,
                bad_rows: io.bad_rows,
                stdout: stdout.contents().0,
                stderr: stderr.contents().0,
            }),
            Err(e) => {
                io.output.abort();
                Err(e)
            }
        }
    }

    fn call_task(
        &self,
        store: &mut Store<crate::sandbox::SandboxState>,
        encoded: &[u8],
    ) -> Result<(), TaskError> {
        let limit = self.policy.task_timeout;
        let instance =
            self.pre.instantiate(&mut *store).map_err(|e| classify(e, store, None, limit))?;
        let memory = instance.get_memory(&mut *store, "memory");
        let result = (|| {
            let alloc = instance.get_typed_func::<u32, u32>(&mut *store, EXPORT_ALLOC)?;
            let run = instance.get_typed_func::<(u32, u32), i32>(&mut *store, EXPORT_RUN_TASK)?;
            let len = u32::try_from(encoded.len())
                .map_err(|_| wasmtime::format_err!("task too large"))?;
            let ptr = alloc.call(&mut *store, len)?;
            let mem =
                memory.ok_or_else(|| wasmtime::format_err!("the module exports no memory"))?;
            mem.write(&mut *store, ptr as usize, encoded)?;
            run.call(&mut *store, (ptr, len))
        })();
        match result {
            Ok(STATUS_OK) => Ok(()),
            Ok(_) => Err(TaskError::Failed(
                store
                    .data_mut()
                    .fail_message
                    .take()
                    .unwrap_or_else(|| "the task failed without saying why".into()),
            )),
            Err(e) => Err(classify(e, store, memory, limit)),
        }
    }

    /// Run the job's `main` with `args`; actions it runs are handed to `actions`. Its stdout and
    /// stderr go to the given streams.
    pub fn run_driver(
        &self,
        args: &[String],
        stdout: &CapturedOutput,
        stderr: &CapturedOutput,
        actions: ActionHandler,
    ) -> Result<DriverReport, TaskError> {
        let limit = self.policy.driver_timeout;
        let io =
            DriverIo { actions, pending_reply: None, budget: limit, resumed_at: Instant::now() };
        let mut argv = vec!["job".to_string()];
        argv.extend_from_slice(args);
        let mut store = self.new_store(Role::Driver(io), &argv, stdout, stderr, limit);
        let instance =
            self.pre.instantiate(&mut store).map_err(|e| classify(e, &mut store, None, limit))?;
        let memory = instance.get_memory(&mut store, "memory");
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| TaskError::Setup(format!("{e:#}")))?;
        match start.call(&mut store, ()) {
            Ok(()) => Ok(DriverReport { exit_code: 0 }),
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => Ok(DriverReport { exit_code: exit.0 }),
                None => Err(classify(e, &mut store, memory, limit)),
            },
        }
    }
}
