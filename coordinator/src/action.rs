//! Running one action on any executor: plan the stages, ask the [`Scheduler`] what to run, hand
//! tasks to the [`Executor`], record what comes back, and assemble the reply for the driver.
//!
//! This is the single execution path of Weft: the embedded engine ([`crate::local`]) and the
//! cluster only differ in their `Executor` — where a task runs and where its map output lives.

use crate::scheduler::{ActionState, Scheduler, TaskFailure, TaskId};
use crate::stages::{JobGraph, StageInput, StageOutput, plan_stages};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use weft::abi::GuestTask;
use weft::plan::{ActionKind, ActionOutput, ActionReply, ActionRequest, InlineBatch};
use weft_runtime::DataDir;
use weft_runtime::input::FileSplit;
use weft_runtime::text_output::TextOutput;

/// Runs tasks somewhere.
pub trait Executor {
    /// Where one map task's buckets are kept, as this executor knows it.
    type MapOutput: Clone;
    /// Slots in total (the default partition count of shuffles).
    fn parallelism(&self) -> u32;
    /// Tasks that could start right now.
    fn free_slots(&self) -> usize;
    /// Start a task.
    fn launch(&mut self, launch: Launch<Self::MapOutput>) -> Result<(), String>;
    /// Wait for the next task to finish.
    fn wait(&mut self) -> Result<Completion<Self::MapOutput>, String>;
    /// A line for the job's log (task output, warnings). By default: this process's stderr.
    fn job_log(&mut self, line: &str) {
        eprintln!("{line}");
    }
    /// A stage of the running action completed (`message` says which, for people following).
    fn stage_completed(&mut self, _message: &str) {}
    /// Whether a map output became unreachable (its node died), so it must be computed again.
    fn is_lost(&self, _output: &Self::MapOutput) -> bool {
        false
    }
    /// Nothing runs and no slot is free (e.g. no node is up): wait until one is, or fail.
    fn wait_for_capacity(&mut self) -> Result<(), String> {
        Err("no slot is available to run tasks".into())
    }
}

/// A task to start.
pub struct Launch<M> {
    /// Which task.
    pub id: TaskId,
    /// The guest's work.
    pub guest: Arc<GuestTask>,
    /// What it reads.
    pub input: LaunchInput<M>,
    /// What it writes.
    pub output: LaunchOutput,
}

/// What a task reads.
pub enum LaunchInput<M> {
    /// An inline batch (none: an empty partition).
    Inline(Option<InlineBatch>),
    /// A file split (none: an empty partition).
    Split(Option<FileSplit>),
    /// Bucket `bucket` of each of these map outputs.
    Shuffle {
        /// The bucket, which is the task's partition.
        bucket: u32,
        /// Every map task's output of the parent stage.
        maps: Vec<M>,
    },
}

/// What a task writes.
#[derive(Debug, Clone)]
pub enum LaunchOutput {
    /// Batches for the driver.
    Driver,
    /// This many shuffle buckets.
    Buckets(u32),
    /// A text part, paths relative to the data directory.
    TextPart {
        /// Written while the task runs.
        tmp: PathBuf,
        /// Renamed to this on success.
        part: PathBuf,
    },
}

/// A finished task.
pub struct Completion<M> {
    /// Which task.
    pub id: TaskId,
    /// How it went.
    pub result: Result<Finished<M>, TaskFailure>,
}

/// What a successful task produced.
pub struct Finished<M> {
    /// Batches for the driver (final stage of a driver action).
    pub batches: Vec<Bytes>,
    /// Where its buckets are (map stages).
    pub map_output: Option<M>,
    /// Rows a lenient CSV source skipped, with the first error.
    pub bad_rows: Option<(u64, String)>,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
}

/// Run `request` on `executor`, reading and writing inside `data`.
pub fn run_action<E: Executor>(
    executor: &mut E,
    data: &DataDir,
    split_bytes: Option<u64>,
    request: &ActionRequest,
) -> ActionReply {
    match try_run_action(executor, data, split_bytes, request) {
        Ok(output) => ActionReply::Done(output),
        Err(message) => ActionReply::Failed(message),
    }
}

fn try_run_action<E: Executor>(
    executor: &mut E,
    data: &DataDir,
    split_bytes: Option<u64>,
    request: &ActionRequest,
) -> Result<ActionOutput, String> {
    let graph = plan_stages(request, data, executor.parallelism(), split_bytes)
        .map_err(|e| e.to_string())?;
    let text_output = match &request.kind {
        ActionKind::SaveText { path } => {
            Some(TextOutput::create(data, path).map_err(|e| e.to_string())?)
        }
        ActionKind::ToDriver => None,
    };
    let progress = progress_bar(&graph);
    let mut run = ActionRun::<E::MapOutput>::new(&graph);
    let mut scheduler = Scheduler::new(&graph);
    loop {
        while executor.free_slots() > 0
            && let Some(id) = scheduler.next_task()
        {
            let launch = run.launch(id, data, text_output.as_ref());
            executor.launch(launch)?;
        }
        if scheduler.running() == 0 {
            if scheduler.state() == ActionState::Running && executor.free_slots() == 0 {
                executor.wait_for_capacity()?;
                continue;
            }
            break;
        }
        let done = executor.wait()?;
        for (stage, partitions) in run.take_lost(executor) {
            tracing::warn!(
                stage,
                ?partitions,
                "map outputs lost with their node; recomputing them"
            );
            scheduler.outputs_lost(stage, &partitions);
        }
        let id = done.id;
        match done.result {
            Ok(finished) => {
                run.record(id, finished, executor, &progress);
                scheduler.succeeded(id);
                let (completed, total) = scheduler.progress(id.stage);
                tracing::debug!(stage = id.stage, completed, total, "task finished");
                progress.inc(1);
                if completed == total {
                    let stage = &graph.stages[id.stage];
                    executor.stage_completed(&format!(
                        "stage {}/{} done ({total} tasks): {}",
                        id.stage + 1,
                        graph.stages.len(),
                        stage.describe()
                    ));
                    if id.stage + 1 < graph.stages.len() {
                        progress.set_message(stage_message(&graph, id.stage + 1));
                    }
                }
            }
            Err(failure) => {
                tracing::debug!(stage = id.stage, partition = id.partition, error = %failure.message, "task failed");
                scheduler.failed(id, &failure);
            }
        }
    }
    progress.finish_and_clear();
    match scheduler.state() {
        ActionState::Succeeded => {}
        ActionState::Failed(message) => return Err(message),
        ActionState::Running => return Err("the scheduler stopped with tasks left".into()),
    }
    if let Some((rows, first)) = &run.bad_rows {
        executor
            .job_log(&format!("warning: skipped {rows} malformed CSV row(s); the first: {first}"));
    }
    if let Some(out) = text_output {
        out.commit()?;
    }
    let batches =
        run.results.into_iter().flatten().flatten().map(|b| InlineBatch(b.to_vec())).collect();
    Ok(ActionOutput { batches })
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
    let describe = graph.stages.get(stage).map(|s| s.describe()).unwrap_or_default();
    format!("stage {}/{}: {describe}", stage + 1, graph.stages.len())
}

/// The state of one action while it runs: map output locations and results.
struct ActionRun<'a, M> {
    graph: &'a JobGraph,
    guests: Vec<Arc<GuestTask>>,
    /// Map outputs: stage → map partition → location.
    shuffles: HashMap<usize, Vec<Option<M>>>,
    /// Final stage results per partition.
    results: Vec<Option<Vec<Bytes>>>,
    bad_rows: Option<(u64, String)>,
}

impl<'a, M: Clone> ActionRun<'a, M> {
    fn new(graph: &'a JobGraph) -> Self {
        let last = graph.stages.last().map_or(0, |s| s.partitions as usize);
        ActionRun {
            graph,
            guests: graph.stages.iter().map(|s| Arc::new(s.guest.clone())).collect(),
            shuffles: HashMap::new(),
            results: vec![None; last],
            bad_rows: None,
        }
    }

    fn launch(&self, id: TaskId, data: &DataDir, text_output: Option<&TextOutput>) -> Launch<M> {
        let stage = &self.graph.stages[id.stage];
        let p = id.partition as usize;
        let input = match &stage.input {
            StageInput::Inline(batches) => LaunchInput::Inline(batches.get(p).cloned()),
            StageInput::Files(splits) => LaunchInput::Split(splits.get(p).cloned()),
            StageInput::Shuffle { from } => {
                let maps = self
                    .shuffles
                    .get(from)
                    .map(|m| m.iter().flatten().cloned().collect())
                    .unwrap_or_default();
                LaunchInput::Shuffle { bucket: id.partition, maps }
            }
        };
        let output = match (&stage.output, text_output) {
            (StageOutput::Shuffle { buckets }, _) => LaunchOutput::Buckets(*buckets),
            (StageOutput::TextFiles, Some(out)) => {
                let (tmp, part) = out.part_paths(id.partition, id.attempt);
                let relative =
                    |p: PathBuf| p.strip_prefix(data.root()).map(|r| r.to_path_buf()).unwrap_or(p);
                LaunchOutput::TextPart { tmp: relative(tmp), part: relative(part) }
            }
            _ => LaunchOutput::Driver,
        };
        Launch { id, guest: self.guests[id.stage].clone(), input, output }
    }

    /// Forget map outputs the executor reports lost; returns them by stage.
    fn take_lost<E: Executor<MapOutput = M>>(&mut self, executor: &E) -> Vec<(usize, Vec<u32>)> {
        let mut lost = Vec::new();
        for (&stage, maps) in self.shuffles.iter_mut() {
            let gone: Vec<u32> = maps
                .iter_mut()
                .enumerate()
                .filter_map(|(p, m)| match m {
                    Some(out) if executor.is_lost(out) => {
                        *m = None;
                        Some(p as u32)
                    }
                    _ => None,
                })
                .collect();
            if !gone.is_empty() {
                lost.push((stage, gone));
            }
        }
        lost
    }

    fn record<E: Executor<MapOutput = M>>(
        &mut self,
        id: TaskId,
        finished: Finished<M>,
        executor: &mut E,
        progress: &ProgressBar,
    ) {
        for (stream, bytes) in [("stdout", &finished.stdout), ("stderr", &finished.stderr)] {
            if bytes.is_empty() {
                continue;
            }
            progress.suspend(|| {
                for line in String::from_utf8_lossy(bytes).lines() {
                    executor.job_log(&format!(
                        "[stage {} task {} {stream}] {line}",
                        id.stage, id.partition
                    ));
                }
            });
        }
        if let Some((n, first)) = finished.bad_rows {
            self.bad_rows.get_or_insert((0, first)).0 += n;
        }
        let stage = &self.graph.stages[id.stage];
        if let Some(location) = finished.map_output {
            let maps = self
                .shuffles
                .entry(id.stage)
                .or_insert_with(|| vec![None; stage.partitions as usize]);
            maps[id.partition as usize] = Some(location);
        } else if stage.output == StageOutput::Driver {
            self.results[id.partition as usize] = Some(finished.batches);
        }
    }
}

/// The last failed action's cause, as recorded by a [`driver_handler`].
pub type LastFailure = std::sync::Arc<std::sync::Mutex<Option<String>>>;

/// The host side of the driver's `run_action` import: decode the request, run it with `run`,
/// remember the cause of the last failed action (to report it if the driver exits with an error),
/// encode the reply.
pub fn driver_handler(
    mut run: impl FnMut(&ActionRequest) -> ActionReply + Send + 'static,
) -> (weft_runtime::ActionHandler, LastFailure) {
    let last_failure = LastFailure::default();
    let record = last_failure.clone();
    let handler = Box::new(move |request: &[u8]| {
        let reply = match rmp_serde::from_slice::<ActionRequest>(request) {
            Ok(request) => run(&request),
            Err(e) => ActionReply::Failed(format!("cannot decode the action request: {e}")),
        };
        if let ActionReply::Failed(message) = &reply {
            *record.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
        }
        rmp_serde::to_vec(&reply).unwrap_or_default()
    });
    (handler, last_failure)
}
