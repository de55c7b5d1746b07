//! The embedded executor behind `weft run`: a pool of worker threads on this machine.
//!
//! Each worker runs one task at a time in a fresh sandbox of the job's module (compiled once).
//! The action loop on the driver's thread feeds the [`Scheduler`] with outcomes and the workers
//! with tasks; map outputs are kept in memory, per map task and bucket, until the action ends.

use crate::scheduler::{ActionState, Scheduler, TaskFailure, TaskId};
use crate::stages::{JobGraph, PlanError, StageInput, StageOutput, plan_stages};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use weft::abi::GuestTask;
use weft::plan::{ActionKind, ActionOutput, ActionReply, ActionRequest, InlineBatch};
use weft_runtime::input::SplitReader;
use weft_runtime::text_output::TextOutput;
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

/// A pool of worker threads running tasks of one job module.
pub struct LocalCluster {
    data: DataDir,
    workers: usize,
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
                    .spawn(move || {
                        loop {
                            let next = work_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                            let Ok(work) = next else { break };
                            // A panic here would be a bug in the host, not the job; report it as
                            // this task's failure instead of leaving the action waiting forever.
                            let result =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    module.run_task(&work.guest, work.input, work.output)
                                }))
                                .unwrap_or_else(|panic| {
                                    Err(TaskError::Setup(format!(
                                        "internal error: {}",
                                        panic_text(&panic)
                                    )))
                                });
                            if done_tx.send((work.id, result)).is_err() {
                                break;
                            }
                        }
                    })
                    .expect("cannot start a worker thread")
            })
            .collect();
        LocalCluster {
            data,
            workers,
            split_bytes: None,
            work: Some(work_tx),
            outcomes,
            threads,
        }
    }

    /// Use `bytes` as the split size of large text files (default: 32 MiB).
    pub fn with_split_bytes(mut self, bytes: u64) -> LocalCluster {
        self.split_bytes = Some(bytes.max(1));
        self
    }

    /// Run one action to completion and describe the outcome for the driver.
    pub fn run_action(&mut self, request: &ActionRequest) -> ActionReply {
        match self.try_run_action(request) {
            Ok(output) => ActionReply::Done(output),
            Err(message) => ActionReply::Failed(message),
        }
    }

    fn try_run_action(&mut self, request: &ActionRequest) -> Result<ActionOutput, String> {
        let graph = plan_stages(request, &self.data, self.workers as u32, self.split_bytes)
            .map_err(|e: PlanError| e.to_string())?;
        let text_output = match &request.kind {
            ActionKind::SaveText { path } => {
                Some(TextOutput::create(&self.data, path).map_err(|e| e.to_string())?)
            }
            ActionKind::ToDriver => None,
        };
        let progress = progress_bar(&graph);
        let mut run = ActionRun::new(&graph, text_output.as_ref(), &progress);
        let mut scheduler = Scheduler::new(&graph);
        let work = self
            .work
            .as_ref()
            .expect("work channel open while the cluster lives");
        loop {
            while scheduler.running() < self.workers
                && let Some(id) = scheduler.next_task()
            {
                let item = run.work_for(id);
                work.send(item)
                    .map_err(|_| "the worker threads are gone".to_string())?;
            }
            if scheduler.running() == 0 {
                break;
            }
            let (id, result) = self
                .outcomes
                .recv()
                .map_err(|_| "the worker threads are gone".to_string())?;
            match result {
                Ok(report) => {
                    run.record(id, report);
                    scheduler.succeeded(id);
                    let (done, total) = scheduler.progress(id.stage);
                    tracing::debug!(stage = id.stage, done, total, "task finished");
                    progress.inc(1);
                    if done == total && id.stage + 1 < graph.stages.len() {
                        progress.set_message(stage_message(&graph, id.stage + 1));
                    }
                }
                Err(e) => {
                    let failure = TaskFailure {
                        message: e.to_string(),
                        retryable: e.is_retryable(),
                    };
                    tracing::debug!(stage = id.stage, partition = id.partition, error = %e, "task failed");
                    scheduler.failed(id, &failure);
                }
            }
        }
        let ActionRun {
            results, bad_rows, ..
        } = run;
        match scheduler.state() {
            ActionState::Succeeded => {}
            ActionState::Failed(message) => return Err(message),
            ActionState::Running => return Err("the scheduler stopped with tasks left".into()),
        }
        if let Some((rows, first)) = &bad_rows {
            tracing::warn!("skipped {rows} malformed CSV row(s); the first: {first}");
        }
        if let Some(out) = text_output {
            out.commit()?;
        }
        Ok(ActionOutput {
            batches: results
                .into_iter()
                .flatten()
                .flatten()
                .map(|b| InlineBatch(b.to_vec()))
                .collect(),
        })
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

/// A progress bar over all tasks of an action, drawn only when stderr is a terminal.
fn progress_bar(graph: &JobGraph) -> ProgressBar {
    let total = graph.stages.iter().map(|s| s.partitions as u64).sum();
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg} [{bar:25}] {pos}/{len} tasks, {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(stage_message(graph, 0));
    bar
}

fn stage_message(graph: &JobGraph, stage: usize) -> String {
    let describe = graph
        .stages
        .get(stage)
        .map(|s| s.describe())
        .unwrap_or_default();
    format!("stage {}/{}: {describe}", stage + 1, graph.stages.len())
}

/// The state of one action while it runs: stored map outputs and results.
struct ActionRun<'a> {
    graph: &'a JobGraph,
    progress: &'a ProgressBar,
    guests: Vec<Arc<GuestTask>>,
    text_output: Option<&'a TextOutput>,
    /// Map outputs: stage → map partition → bucket → batches.
    shuffles: HashMap<usize, Vec<Vec<Vec<Bytes>>>>,
    /// Final stage results per partition.
    results: Vec<Option<Vec<Bytes>>>,
    bad_rows: Option<(u64, String)>,
}

impl<'a> ActionRun<'a> {
    fn new(
        graph: &'a JobGraph,
        text_output: Option<&'a TextOutput>,
        progress: &'a ProgressBar,
    ) -> Self {
        let last = graph.stages.last().map_or(0, |s| s.partitions as usize);
        ActionRun {
            graph,
            progress,
            guests: graph
                .stages
                .iter()
                .map(|s| Arc::new(s.guest.clone()))
                .collect(),
            text_output,
            shuffles: HashMap::new(),
            results: vec![None; last],
            bad_rows: None,
        }
    }

    fn work_for(&self, id: TaskId) -> Work {
        let stage = &self.graph.stages[id.stage];
        let p = id.partition as usize;
        let input: Box<dyn BatchSource> = match &stage.input {
            StageInput::Inline(batches) => Box::new(VecSource::new(
                batches.get(p).map(|b| Bytes::from(b.0.clone())),
            )),
            StageInput::Files(splits) => Box::new(SplitReader::new(
                splits.get(p).cloned().into_iter().collect(),
            )),
            StageInput::Shuffle { from } => {
                let maps = self
                    .shuffles
                    .get(from)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                Box::new(VecSource::new(
                    maps.iter()
                        .flat_map(|buckets| buckets.get(p).cloned().unwrap_or_default()),
                ))
            }
        };
        let output = match (&stage.output, self.text_output) {
            (StageOutput::Shuffle { buckets }, _) => OutputSpec::Buckets(*buckets),
            (StageOutput::TextFiles, Some(out)) => {
                let (tmp, part) = out.part_paths(id.partition, id.attempt);
                OutputSpec::TextPart { tmp, part }
            }
            _ => OutputSpec::Batches,
        };
        Work {
            id,
            guest: self.guests[id.stage].clone(),
            input,
            output,
        }
    }

    fn record(&mut self, id: TaskId, report: TaskReport) {
        for (stream, bytes) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
            if bytes.is_empty() {
                continue;
            }
            self.progress.suspend(|| {
                for line in String::from_utf8_lossy(bytes).lines() {
                    eprintln!("[stage {} task {} {stream}] {line}", id.stage, id.partition);
                }
            });
        }
        if let Some((n, first)) = report.bad_rows {
            let entry = self.bad_rows.get_or_insert((0, first));
            entry.0 += n;
        }
        let partitions = self.graph.stages[id.stage].partitions as usize;
        match report.output {
            TaskOutput::Buckets(buckets) => {
                let maps = self
                    .shuffles
                    .entry(id.stage)
                    .or_insert_with(|| vec![Vec::new(); partitions]);
                maps[id.partition as usize] = buckets;
            }
            TaskOutput::Batches(batches) => self.results[id.partition as usize] = Some(batches),
            TaskOutput::TextPart(_) => {}
        }
    }
}
