//! One action, from stages to the driver's reply.
//!
//! [`ActionRun`] is the action as a state machine, with no I/O and no clocks (quinn's shape for
//! protocol cores): ask it for the next [`TaskSpec`] to launch, feed it every
//! [`ExecutorEvent`], drain the [`ActionEvent`]s it has for people watching, and take its result
//! once it is finished. [`run_action`] is the thin loop that connects it to an [`Executor`];
//! everything that decides anything — which outcome counts, what a lost node costs, when results
//! are too large, when the action is over — is here, and is tested in memory against a scripted
//! executor (`tests`).
//!
//! Outcomes are matched to what is running by their [`weft_abi::task::TaskId`]: job, action,
//! stage, partition and attempt. Anything else — an outcome of an earlier action that failed
//! while its tasks still ran, a second report of the same attempt — is dropped and counted,
//! never recorded.

mod run;
#[cfg(test)]
mod tests;

pub use run::{ActionObserver, NO_NODES_TIMEOUT, drive, run_action};

use crate::executor::{ExecutorEvent, TaskOutcome, TaskSuccess};
use crate::scheduler::{ActionState, Scheduler};
use crate::stages::{JobGraph, StageOutput, TaskPart};
use bytes::Bytes;
use std::collections::{HashMap, HashSet, VecDeque};
use weft_abi::guest::{AccumulatorUpdate, merge_updates};
use weft_abi::plan::{ActionOutput, DatasetId, InlineBatch};
use weft_abi::task::{
    BucketPiece, CACHE_ACTION, FailureKind, LostOutput, MapOutput, MapOutputId, PartTarget,
    ShuffleKey, ShuffleRead, TaskFailure, TaskId, TaskInput, TaskLimits, TaskOutput, TaskSpec,
};
use weft_storage::shuffle_store::BATCH_OVERHEAD;

/// What an action needs to know about its job.
#[derive(Debug, Clone)]
pub struct ActionSettings {
    /// The job.
    pub job: String,
    /// The action's number within the job, from 1.
    pub action: u32,
    /// The job's module.
    pub module_hash: String,
    /// Sandbox limits of every task; `result_bytes` is the most the whole action may return to
    /// the driver, all tasks together.
    pub limits: TaskLimits,
    /// The job's shuffle key.
    pub key: ShuffleKey,
    /// Where the parts of a saving action go (its staging directory).
    pub staging: Option<String>,
    /// The job's broadcast values, by reference, for every task.
    pub broadcasts: Vec<weft_abi::task::BroadcastRef>,
    /// The UDF modules the job bound, for every task.
    pub udfs: Vec<weft_abi::udf::UdfModuleRef>,
}

/// What people following the action may want to know.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionEvent {
    /// The action's stages are planned: (description, tasks) of each, parents first.
    Planned(Vec<(String, u32)>),
    /// A task of `stage` completed; `done` of `total` are complete.
    TaskDone {
        /// The stage.
        stage: usize,
        /// Its completed tasks.
        done: usize,
        /// Its tasks.
        total: usize,
    },
    /// Every task of `stage` completed.
    StageDone {
        /// The stage.
        stage: usize,
        /// The action's number of stages.
        stages: usize,
        /// The stage's tasks.
        tasks: usize,
        /// Its description.
        describe: String,
    },
    /// A line for the job's log: what a task printed, a warning, a retry.
    Log(String),
    /// The action is over (whatever its result).
    Ended,
}

/// The state of one action while it runs.
pub struct ActionRun {
    settings: ActionSettings,
    graph: JobGraph,
    scheduler: Scheduler,
    /// Map outputs by stage and partition (empty for stages that write no shuffle).
    map_outputs: Vec<Vec<Option<MapOutput>>>,
    /// The final stage's batches by partition, for the driver.
    results: Vec<Option<Vec<Bytes>>>,
    result_bytes: u64,
    bad_rows: Option<(u64, String)>,
    /// Accumulator updates by stage and partition: the accepted success of each partition's
    /// latest run, so that retries and recomputations replace rather than add.
    accumulators: Vec<Vec<Vec<AccumulatorUpdate>>>,
    /// Nodes known to be gone: what they report now is not to be trusted.
    lost_nodes: HashSet<String>,
    /// Copies of map outputs forgotten (output, node), to recognise failures to fetch them.
    forgotten: HashSet<(MapOutputId, String)>,
    events: VecDeque<ActionEvent>,
    stale: u64,
    /// Cached blocks computed (written) by this action.
    blocks_computed: usize,
}

impl ActionRun {
    /// Start running `graph`.
    pub fn new(settings: ActionSettings, graph: JobGraph) -> ActionRun {
        let scheduler =
            Scheduler::new(graph.stages.iter().map(|s| (s.partitions, s.parents.clone())));
        let map_outputs = graph
            .stages
            .iter()
            .map(|s| match s.output.buckets() {
                Some(_) => vec![None; s.partitions as usize],
                None => Vec::new(),
            })
            .collect();
        let last = graph.stages.last().map_or(0, |s| s.partitions as usize);
        let accumulators =
            graph.stages.iter().map(|s| vec![Vec::new(); s.partitions as usize]).collect();
        let planned = graph.stages.iter().map(|s| (s.describe(), s.partitions)).collect();
        ActionRun {
            settings,
            graph,
            scheduler,
            map_outputs,
            results: vec![None; last],
            result_bytes: 0,
            bad_rows: None,
            accumulators,
            lost_nodes: HashSet::new(),
            forgotten: HashSet::new(),
            events: VecDeque::from([ActionEvent::Planned(planned)]),
            stale: 0,
            blocks_computed: 0,
        }
    }

    /// Whether a task is ready to launch.
    pub fn has_ready_task(&self) -> bool {
        self.scheduler.has_ready_task()
    }

    /// The next task to launch, if one is ready (it counts as running from now on).
    pub fn next_task(&mut self) -> Option<TaskSpec> {
        let attempt = self.scheduler.next_task()?;
        let stage = &self.graph.stages[attempt.stage];
        let p = attempt.partition;
        let (guest, parts) = stage.task(p);
        let mut inputs = Vec::with_capacity(parts.len());
        for part in parts {
            inputs.push(match part {
                TaskPart::Empty => TaskInput::Empty,
                TaskPart::Inline(batch) => TaskInput::Inline(batch),
                TaskPart::Split(split) => TaskInput::Split(split),
                part @ (TaskPart::Bucket { .. } | TaskPart::Block { .. }) => {
                    // A bucket of every map output, or a cached partition's one block.
                    let (from, bucket, wanted) = match part {
                        TaskPart::Bucket { from, bucket } => {
                            (from, bucket, 0..self.map_outputs[from].len() as u32)
                        }
                        TaskPart::Block { from, partition } => (from, 0, partition..partition + 1),
                        _ => unreachable!("matched above"),
                    };
                    let maps = &self.map_outputs[from];
                    let missing: Vec<u32> =
                        wanted.clone().filter(|&m| maps[m as usize].is_none()).collect();
                    if !missing.is_empty() {
                        // Never a partial input: the missing outputs are computed (again) first.
                        tracing::warn!(
                            stage = from,
                            ?missing,
                            "map outputs missing; recomputing them"
                        );
                        self.scheduler.put_back(attempt);
                        self.scheduler.outputs_lost(from, &missing);
                        return None;
                    }
                    let pieces = wanted
                        .filter_map(|m| maps[m as usize].as_ref())
                        .map(|m| BucketPiece {
                            map: m.id.clone(),
                            node_id: m.node_id.clone(),
                            shuffle_addr: m.shuffle_addr.clone(),
                            bytes: m.bucket_bytes.get(bucket as usize).copied().unwrap_or(0),
                        })
                        .collect();
                    TaskInput::Shuffle(ShuffleRead {
                        bucket,
                        key: self.settings.key.clone(),
                        pieces,
                    })
                }
            });
        }
        let s = &self.settings;
        let output = match (stage.output.buckets(), &s.staging) {
            (Some(buckets), _) => TaskOutput::Buckets {
                buckets,
                id: self.map_output_id(attempt.stage, p),
                key: s.key.clone(),
            },
            (None, Some(staging)) if stage.output == StageOutput::Parts => {
                TaskOutput::Part(PartTarget {
                    staging: staging.clone(),
                    partition: p,
                    attempt: attempt.attempt,
                })
            }
            _ => TaskOutput::Driver,
        };
        Some(TaskSpec {
            id: TaskId {
                job: s.job.clone(),
                action: s.action,
                stage: attempt.stage as u32,
                stage_attempt: attempt.stage_attempt,
                partition: p,
                attempt: attempt.attempt,
            },
            module_hash: s.module_hash.clone(),
            // A task may return at most what is left of the action's budget.
            limits: TaskLimits {
                result_bytes: s.limits.result_bytes.saturating_sub(self.result_bytes),
                ..s.limits
            },
            guest,
            inputs,
            output,
            broadcasts: s.broadcasts.clone(),
            // Set by the cluster's executor for a tenant's job.
            data_root: None,
            udfs: s.udfs.clone(),
        })
    }

    /// What the output of `partition` of `stage` is called: by this action and the stage, or
    /// for a cached dataset's block by the job's [`CACHE_ACTION`] and the dataset.
    fn map_output_id(&self, stage: usize, partition: u32) -> MapOutputId {
        let (action, stage) = match self.graph.stages[stage].output {
            StageOutput::Cache { dataset } => (CACHE_ACTION, dataset.0 as u32),
            _ => (self.settings.action, stage as u32),
        };
        MapOutputId { job: self.settings.job.clone(), action, stage, partition }
    }

    /// The stage whose output `map` names, if it is this action's (or one of the job's cached
    /// blocks that this action reads).
    fn stage_of(&self, map: &MapOutputId) -> Option<usize> {
        if map.job != self.settings.job {
            return None;
        }
        if map.action == CACHE_ACTION {
            let cached = |s: &crate::stages::Stage| matches!(s.output, StageOutput::Cache { dataset } if dataset.0 == u64::from(map.stage));
            return self.graph.stages.iter().position(cached);
        }
        (map.action == self.settings.action).then_some(map.stage as usize)
    }

    /// Take the blocks of cached datasets kept from earlier actions: their partitions count as
    /// done, so that their lineage runs only for blocks that are missing or get lost.
    pub fn reuse_cached(&mut self, blocks: &HashMap<DatasetId, Vec<Option<MapOutput>>>) -> usize {
        let mut reused = 0;
        for (stage, s) in self.graph.stages.iter().enumerate() {
            let StageOutput::Cache { dataset } = s.output else { continue };
            let Some(kept) = blocks.get(&dataset) else { continue };
            if kept.len() != s.partitions as usize {
                continue;
            }
            for (p, block) in kept.iter().enumerate() {
                if let Some(block) = block {
                    self.map_outputs[stage][p] = Some(block.clone());
                    self.scheduler.already_done(stage, p as u32);
                    reused += 1;
                }
            }
        }
        reused
    }

    /// How many cached blocks this action computed (the first time, or again after a loss).
    pub fn blocks_computed(&self) -> usize {
        self.blocks_computed
    }

    /// The blocks of the cached datasets this action read or wrote, as they are now.
    pub fn cached_blocks(&self) -> Vec<(DatasetId, Vec<Option<MapOutput>>)> {
        let stages = self.graph.stages.iter().zip(&self.map_outputs);
        stages
            .filter_map(|(s, maps)| match s.output {
                StageOutput::Cache { dataset } => Some((dataset, maps.clone())),
                _ => None,
            })
            .collect()
    }

    /// Take in what happened where tasks run.
    pub fn on_event(&mut self, event: ExecutorEvent) {
        match event {
            ExecutorEvent::Finished(outcome) => self.on_outcome(outcome),
            ExecutorEvent::NodeLost(node) => self.on_node_lost(node),
            ExecutorEvent::SlotsChanged => {}
        }
    }

    fn on_outcome(&mut self, outcome: TaskOutcome) {
        let id = &outcome.id;
        let (stage, p) = (id.stage as usize, id.partition);
        if id.job != self.settings.job
            || id.action != self.settings.action
            || !self.scheduler.is_running(stage, p, id.attempt)
        {
            tracing::debug!(task = %id, "dropping an outcome of a task that is not running");
            self.stale += 1;
            return;
        }
        let result = match outcome.result {
            Ok(success) => self.check(&outcome.id, &outcome.node, success),
            Err(failure) => Err(failure),
        };
        match result {
            Ok(success) => self.record(&outcome.id, success),
            Err(failure) => {
                tracing::debug!(task = %id, error = %failure.message, "task failed");
                // A full node did not run the task, and a task that could not fetch its input
                // failed for its input's sake (which runs again): neither counts as an attempt,
                // unless the fetch named an output that is not the one held now.
                let counted = match &failure.kind {
                    FailureKind::Busy => false,
                    FailureKind::FetchFailed(lost) => !self.forget_outputs_of(lost),
                    FailureKind::Job | FailureKind::Infrastructure => true,
                };
                self.scheduler.failed(stage, p, id.attempt, &failure, counted);
                // A full node is not news for the job's log (it happens once per pause at most).
                if self.scheduler.state() == ActionState::Running
                    && failure.kind != FailureKind::Busy
                {
                    self.log(format!("retrying {id}: {}", failure.message));
                }
            }
        }
    }

    /// A success is only taken as one if it holds what the stage must produce.
    fn check(
        &mut self,
        id: &TaskId,
        node: &str,
        success: TaskSuccess,
    ) -> Result<TaskSuccess, TaskFailure> {
        let stage = &self.graph.stages[id.stage as usize];
        if let Some(buckets) = stage.output.buckets() {
            if self.lost_nodes.contains(node) {
                return Err(TaskFailure::infrastructure(format!("node {node} was lost")));
            }
            let expected = self.map_output_id(id.stage as usize, id.partition);
            let fits = success
                .map_output
                .as_ref()
                .is_some_and(|m| m.id == expected && m.bucket_bytes.len() == buckets as usize);
            if !fits {
                return Err(TaskFailure::infrastructure(format!(
                    "node {node} reported no map output of {buckets} buckets for {id}"
                )));
            }
        }
        if stage.output == StageOutput::Driver {
            let bytes: u64 = success.batches.iter().map(|b| b.len() as u64 + BATCH_OVERHEAD).sum();
            self.result_bytes += bytes;
            if self.result_bytes > self.settings.limits.result_bytes {
                return Err(TaskFailure::job(format!(
                    "the action's results exceed the {} MiB limit for what is returned to the \
                     driver (--max-result-size); reduce them before collecting, or save them \
                     instead",
                    self.settings.limits.result_bytes >> 20
                )));
            }
        }
        Ok(success)
    }

    fn record(&mut self, id: &TaskId, success: TaskSuccess) {
        let (stage, p) = (id.stage as usize, id.partition);
        for (stream, bytes) in [("stdout", &success.stdout), ("stderr", &success.stderr)] {
            for line in String::from_utf8_lossy(bytes).lines() {
                self.log(format!("[stage {stage} task {p} {stream}] {line}"));
            }
        }
        if let Some((n, first)) = success.bad_rows {
            self.bad_rows.get_or_insert((0, first)).0 += n;
        }
        self.accumulators[stage][p as usize] = success.accumulators;
        match self.graph.stages[stage].output {
            StageOutput::Shuffle { .. } => self.map_outputs[stage][p as usize] = success.map_output,
            StageOutput::Cache { .. } => {
                self.map_outputs[stage][p as usize] = success.map_output;
                self.blocks_computed += 1;
            }
            StageOutput::Driver => self.results[p as usize] = Some(success.batches),
            StageOutput::Parts => {}
        }
        self.scheduler.succeeded(stage, p, id.attempt);
        let (done, total) = self.scheduler.progress(stage);
        tracing::debug!(stage, partition = p, done, total, "task finished");
        self.events.push_back(ActionEvent::TaskDone { stage, done, total });
        if done == total {
            self.events.push_back(ActionEvent::StageDone {
                stage,
                stages: self.graph.stages.len(),
                tasks: total,
                describe: self.graph.stages[stage].describe(),
            });
        }
        if self.scheduler.state() == ActionState::Succeeded
            && let Some((rows, first)) = &self.bad_rows
        {
            let line = format!("warning: skipped {rows} malformed CSV row(s); the first: {first}");
            self.log(line);
        }
    }

    /// A map output could not be fetched from its node: if that is where the output is held
    /// now, that node's outputs are not to be relied on — forget all of them (Spark's way with a
    /// fetch failure) and compute them again. Returns whether the failure is explained by lost
    /// outputs (these, or ones already forgotten, or a node already lost), so that the task is
    /// not to blame.
    fn forget_outputs_of(&mut self, lost: &LostOutput) -> bool {
        let map = &lost.map;
        let Some(stage) = self.stage_of(map) else { return false };
        if self.lost_nodes.contains(&lost.node)
            || self.forgotten.contains(&(map.clone(), lost.node.clone()))
        {
            return true;
        }
        let current = self
            .map_outputs
            .get(stage)
            .and_then(|m| m.get(map.partition as usize))
            .and_then(Option::as_ref);
        if current.is_none_or(|m| m.node_id != lost.node) {
            // An older copy, already replaced (or forgotten): nothing to do.
            return false;
        }
        tracing::warn!(stage = map.stage, partition = map.partition, node = %lost.node, "a map output could not be fetched; recomputing what its node held");
        self.forget_node(&lost.node)
    }

    /// Forget every map output held by `node` and compute them again; whether there were any.
    fn forget_node(&mut self, node: &str) -> bool {
        let mut any = false;
        for (stage, maps) in self.map_outputs.iter_mut().enumerate() {
            let lost: Vec<u32> = (0..maps.len())
                .filter(|&p| maps[p].as_ref().is_some_and(|m| m.node_id == node))
                .map(|p| p as u32)
                .collect();
            for &p in &lost {
                if let Some(m) = maps[p as usize].take() {
                    self.forgotten.insert((m.id, m.node_id));
                }
            }
            if !lost.is_empty() {
                any = true;
                tracing::warn!(stage, partitions = ?lost, %node, "map outputs lost with their node; recomputing them");
                if !self.scheduler.outputs_lost(stage, &lost) {
                    tracing::debug!(stage, "nothing reads those outputs any more");
                }
            }
        }
        any
    }

    fn on_node_lost(&mut self, node: String) {
        self.forget_node(&node);
        self.lost_nodes.insert(node);
    }

    fn log(&mut self, line: String) {
        self.events.push_back(ActionEvent::Log(line));
    }

    /// Fail the action for a reason from outside (the job was cancelled, the executor is gone).
    pub fn fail(&mut self, message: String) {
        self.scheduler.fail(message);
    }

    /// Tasks launched and not reported yet.
    pub fn running(&self) -> usize {
        self.scheduler.running()
    }

    /// Outcomes dropped because they matched nothing running.
    pub fn stale_outcomes(&self) -> u64 {
        self.stale
    }

    /// Whether the action is over: every task succeeded, or it failed (tasks still running are
    /// not waited for; whatever they report later is stale).
    pub fn is_finished(&self) -> bool {
        self.scheduler.state() != ActionState::Running
    }

    /// The next event for people following, if any.
    pub fn poll_event(&mut self) -> Option<ActionEvent> {
        self.events.pop_front()
    }

    /// The action's result: the final stage's batches in partition order, or why it failed.
    pub fn finish(self) -> Result<ActionOutput, String> {
        match self.scheduler.state() {
            ActionState::Succeeded => {}
            ActionState::Failed(message) => return Err(message),
            ActionState::Running => return Err("the action ended with tasks left".into()),
        }
        let batches =
            self.results.into_iter().flatten().flatten().map(|b| InlineBatch(b.to_vec())).collect();
        let mut accumulators = Vec::new();
        for updates in self.accumulators.iter().flatten() {
            merge_updates(&mut accumulators, updates);
        }
        Ok(ActionOutput { batches, accumulators })
    }
}
