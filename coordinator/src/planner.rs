//! Physical planning: cut a logical plan into [`Stage`]s at shuffle boundaries.
//!
//! Narrow nodes — operators, unions, coalesces, products — stay in the stage of their
//! children. A shuffle node makes one map stage per parent and is read by a [`Pipe::Merge`] in
//! the stage that needs it, with one exception (Spark's narrow dependency): a hash shuffle whose
//! parent is already partitioned by key into as many buckets — the output of another hash
//! shuffle, through operators that keep every record's key — reads that parent where it is, in
//! the same task, instead of moving it again.
//!
//! The planner trusts nothing in the plan: the request is validated first
//! ([`ActionRequest::validate`], which also bounds how deep the planner recurses), and every
//! count it derives (file splits, partitions of unions and products, shuffle cells, tasks) is
//! held to the bounds of [`weft_abi::limits`].

use crate::stages::{JobGraph, Pipe, SourceInput, Stage, StageId, StageOutput};
use std::collections::HashMap;
use thiserror::Error;
use weft_abi::limits::{MAX_PARTITIONS, MAX_SHUFFLE_CELLS, MAX_STAGES, MAX_TASKS};
use weft_abi::plan::{ActionKind, ActionRequest, Call, NodeIndex, NodeKind, PlanNode, Source};
use weft_abi::task::FileFormat;
use weft_storage::input::{DEFAULT_SPLIT_BYTES, plan_splits, split_size};
use weft_storage::{Storage, StorageError};

/// Why a plan could not be turned into stages.
#[derive(Debug, Error)]
pub enum PlanError {
    /// A source or output path was refused or could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The plan is inconsistent or over a limit.
    #[error("the action's plan was refused: {0}")]
    Refused(String),
}

/// Turn an action request into stages. `parallelism` is the number of slots (the default
/// partition count of shuffles), `split_bytes` the largest split of a plain text file.
pub fn plan_stages(
    request: &ActionRequest,
    storage: &dyn Storage,
    parallelism: u32,
    split_bytes: Option<u64>,
) -> Result<JobGraph, PlanError> {
    request.validate().map_err(PlanError::Refused)?;
    let mut planner = Planner {
        request,
        storage,
        parallelism: parallelism.max(1),
        split_bytes: split_bytes.unwrap_or(DEFAULT_SPLIT_BYTES),
        stages: Vec::new(),
        shuffles: HashMap::new(),
        caches: HashMap::new(),
    };
    let output = match request.kind {
        ActionKind::ToDriver => StageOutput::Driver,
        ActionKind::SaveText { .. } => StageOutput::Parts,
    };
    planner.stage_for(request.target, request.sink.clone(), output)?;
    let tasks: u64 = planner.stages.iter().map(|s| u64::from(s.partitions)).sum();
    if tasks > MAX_TASKS {
        return Err(PlanError::Refused(format!(
            "the action would run {tasks} tasks, more than the {MAX_TASKS} allowed; use fewer \
             partitions or larger input splits"
        )));
    }
    Ok(JobGraph { stages: planner.stages })
}

/// How a shuffle node was planned.
#[derive(Debug, Clone)]
struct ShufflePlan {
    buckets: u32,
    /// Per parent: the map stage writing its buckets, or `None` when it is read in place.
    sides: Vec<Option<StageId>>,
}

struct Planner<'a> {
    request: &'a ActionRequest,
    storage: &'a dyn Storage,
    parallelism: u32,
    split_bytes: u64,
    stages: Vec<Stage>,
    /// Shuffle nodes planned so far, so that a shuffle used twice is computed once.
    shuffles: HashMap<NodeIndex, ShufflePlan>,
    /// Cached nodes planned so far → the stage writing their blocks.
    caches: HashMap<NodeIndex, StageId>,
}

fn refused(message: String) -> PlanError {
    PlanError::Refused(message)
}

impl Planner<'_> {
    fn node(&self, at: NodeIndex) -> &PlanNode {
        // In range: the request was validated.
        &self.request.plan.nodes[at as usize]
    }

    /// Build the stage that computes `target` and feeds it to `sink`.
    fn stage_for(
        &mut self,
        target: NodeIndex,
        sink: Call,
        output: StageOutput,
    ) -> Result<StageId, PlanError> {
        // The stage that writes a cached dataset's blocks computes it; every other reads them.
        let computing = matches!(output, StageOutput::Cache { .. }).then_some(target);
        let pipe = self.pipe_from(target, computing)?;
        let partitions = pipe.partitions();
        if partitions > u64::from(MAX_PARTITIONS) {
            return Err(refused(format!(
                "`{}` would have {partitions} partitions, more than the {MAX_PARTITIONS} a stage \
                 may have; coalesce its inputs first",
                sink.label
            )));
        }
        if self.stages.len() >= MAX_STAGES {
            return Err(refused(format!(
                "the action would be cut into more than {MAX_STAGES} stages (shuffles)"
            )));
        }
        let mut parents = Vec::new();
        pipe.shuffle_reads(&mut parents);
        let dataset = self.node(target).dataset;
        let partitions = partitions as u32;
        self.stages.push(Stage { pipe, sink, output, partitions, parents, dataset });
        Ok(self.stages.len() - 1)
    }

    /// The pipe computing node `at` within a stage.
    fn pipe_for(&mut self, at: NodeIndex) -> Result<Pipe, PlanError> {
        self.pipe_from(at, None)
    }

    /// The pipe computing node `at`, which reads cached nodes' blocks except `computing`'s.
    fn pipe_from(
        &mut self,
        at: NodeIndex,
        computing: Option<NodeIndex>,
    ) -> Result<Pipe, PlanError> {
        // A chain of narrow operators is walked, not recursed into: it may be long.
        let mut ops = Vec::new();
        let mut at = at;
        let cached = |planner: &Self, at| planner.node(at).cache.is_some() && computing != Some(at);
        while !cached(self, at)
            && let NodeKind::Narrow { op, .. } = &self.node(at).kind
        {
            ops.push(op.clone());
            at = self.node(at).parents[0];
        }
        ops.reverse();
        let node = self.node(at).clone();
        if cached(self, at) {
            let base = self.cached_read(at)?;
            return Ok(if ops.is_empty() {
                base
            } else {
                Pipe::Ops { ops, parent: Box::new(base) }
            });
        }
        let base = match node.kind {
            NodeKind::Narrow { .. } => unreachable!("walked past"),
            NodeKind::Source { source, decode } => {
                let input = self.source_input(&source, &decode)?;
                Pipe::Source { decode, input }
            }
            NodeKind::Union => {
                let mut parents = Vec::with_capacity(node.parents.len());
                for &parent in &node.parents {
                    parents.push(self.pipe_for(parent)?);
                }
                Pipe::Union { parents }
            }
            NodeKind::Coalesce { partitions, concat } => {
                let parent = Box::new(self.pipe_for(node.parents[0])?);
                Pipe::Coalesce { concat, partitions, parent }
            }
            NodeKind::Cartesian { product } => {
                let left = Box::new(self.pipe_for(node.parents[0])?);
                let right = Box::new(self.pipe_for(node.parents[1])?);
                Pipe::Product { product, left, right }
            }
            NodeKind::Shuffle { sides, merge, .. } => {
                let plan = self.plan_shuffle(at)?;
                let mut pipes = Vec::with_capacity(sides.len());
                for ((side, &parent), stage) in sides.into_iter().zip(&node.parents).zip(plan.sides)
                {
                    pipes.push(match stage {
                        Some(from) => {
                            Pipe::Shuffled { read: side.read, from, buckets: plan.buckets }
                        }
                        None => {
                            let parent = self.pipe_for(parent)?;
                            match side.local {
                                Some(op) => Pipe::Ops { ops: vec![op], parent: Box::new(parent) },
                                None => parent,
                            }
                        }
                    });
                }
                Pipe::Merge { merge, sides: pipes }
            }
        };
        Ok(if ops.is_empty() { base } else { Pipe::Ops { ops, parent: Box::new(base) } })
    }

    /// Read cached node `at` from its blocks, written by a stage of their own.
    fn cached_read(&mut self, at: NodeIndex) -> Result<Pipe, PlanError> {
        let node = self.node(at).clone();
        let calls = node.cache.expect("a cached node");
        let from = match self.caches.get(&at) {
            Some(&stage) => stage,
            None => {
                if node.dataset.0 > u64::from(u32::MAX) {
                    return Err(refused(format!("dataset {} cannot be cached", node.dataset.0)));
                }
                let output = StageOutput::Cache { dataset: node.dataset };
                let stage = self.stage_for(at, calls.write, output)?;
                self.caches.insert(at, stage);
                stage
            }
        };
        let partitions = self.stages[from].partitions;
        Ok(Pipe::Cached { read: calls.read, from, partitions })
    }

    /// The number of partitions node `at` is hash-partitioned by key into, if it is: the output
    /// of a hash shuffle, through operators that keep every record's key.
    fn hash_partitions(&mut self, at: NodeIndex) -> Result<Option<u32>, PlanError> {
        let mut at = at;
        loop {
            match &self.node(at).kind {
                // Blocks are read partition by partition: a cached dataset keeps its partitioning.
                NodeKind::Narrow { keeps_partitioning: true, .. } => at = self.node(at).parents[0],
                NodeKind::Shuffle { hash_partitioned: true, .. } => {
                    return Ok(Some(self.plan_shuffle(at)?.buckets));
                }
                _ => return Ok(None),
            }
        }
    }

    /// Plan shuffle node `node`: its bucket count, and a map stage for every parent not already
    /// partitioned that way.
    fn plan_shuffle(&mut self, node: NodeIndex) -> Result<ShufflePlan, PlanError> {
        if let Some(plan) = self.shuffles.get(&node) {
            return Ok(plan.clone());
        }
        let PlanNode { parents, kind, .. } = self.node(node).clone();
        let NodeKind::Shuffle { partitions, sides, merge, hash_partitioned } = kind else {
            unreachable!("plan_shuffle of a shuffle node");
        };
        let mut existing = vec![None; parents.len()];
        if hash_partitioned {
            for (e, &parent) in existing.iter_mut().zip(&parents) {
                *e = self.hash_partitions(parent)?;
            }
        }
        // As asked; else as a parent already partitioned by key (no move for it); else at least
        // the parallelism and the widest parent.
        let chosen = partitions.or_else(|| existing.iter().flatten().copied().max());
        let mut stages = vec![None; parents.len()];
        for (i, (side, &parent)) in sides.iter().zip(&parents).enumerate() {
            if chosen.is_some() && existing[i] == chosen {
                continue;
            }
            let buckets = StageOutput::Shuffle { buckets: chosen.unwrap_or(0) };
            stages[i] = Some(self.stage_for(parent, side.write.clone(), buckets)?);
        }
        let widest = stages.iter().flatten().map(|&s| self.stages[s].partitions).max();
        let buckets = chosen
            .unwrap_or_else(|| self.parallelism.max(widest.unwrap_or(1)))
            .clamp(1, MAX_PARTITIONS);
        for &s in stages.iter().flatten() {
            let cells = u64::from(self.stages[s].partitions) * u64::from(buckets);
            if cells > MAX_SHUFFLE_CELLS {
                return Err(refused(format!(
                    "`{}` would shuffle {} map tasks into {buckets} buckets, more than \
                     {MAX_SHUFFLE_CELLS} pieces; ask for fewer partitions or larger input splits",
                    merge.label, self.stages[s].partitions
                )));
            }
            self.stages[s].output = StageOutput::Shuffle { buckets };
        }
        let plan = ShufflePlan { buckets, sides: stages };
        self.shuffles.insert(node, plan.clone());
        Ok(plan)
    }

    fn file_input(
        &self,
        path: &str,
        format: FileFormat,
        label: &str,
    ) -> Result<SourceInput, PlanError> {
        let files = self.storage.list(path)?;
        let total = files.iter().map(|f| f.len).sum();
        let size = split_size(total, self.parallelism, self.split_bytes);
        let splits = plan_splits(self.storage, &files, format, size)?;
        if splits.len() > MAX_PARTITIONS as usize {
            return Err(refused(format!(
                "`{label}` reads {} files and splits, more than the {MAX_PARTITIONS} tasks a \
                 stage may have; use larger splits or fewer files",
                splits.len()
            )));
        }
        Ok(SourceInput::Files(splits))
    }

    fn source_input(&self, source: &Source, decode: &Call) -> Result<SourceInput, PlanError> {
        Ok(match source {
            Source::Inline { partitions } => SourceInput::Inline(partitions.clone()),
            Source::TextFiles { path } => self.file_input(path, FileFormat::Text, &decode.label)?,
            Source::CsvFiles { path } => self.file_input(path, FileFormat::Csv, &decode.label)?,
            Source::Generated { partitions } => SourceInput::Generated(*partitions),
        })
    }
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
