//! Physical planning: cut a logical plan into stages at shuffle boundaries.
//!
//! A stage is a source (files, inline records, or one shuffle's buckets), the narrow operators
//! that follow it, and a sink (the action's, or a shuffle write). It runs as one task per
//! partition. Stages are listed parents first; the last one is the action's.

use std::collections::HashMap;
use thiserror::Error;
use weft::abi::GuestTask;
use weft::plan::{ActionKind, ActionRequest, Call, InlineBatch, NodeId, NodeKind, Source};
use weft_runtime::input::{DEFAULT_SPLIT_BYTES, FileFormat, FileSplit, plan_splits, split_size};
use weft_runtime::{DataDir, DataDirError};

/// Index of a stage in its [`JobGraph`].
pub type StageId = usize;

/// Why a plan could not be turned into stages.
#[derive(Debug, Error)]
pub enum PlanError {
    /// A source or output path was refused or not found.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// An input file could not be read while planning its splits.
    #[error("{0}")]
    Input(String),
    /// The plan is inconsistent (a parent after its child, an unknown node).
    #[error("malformed plan: {0}")]
    Malformed(String),
}

/// Where a stage's tasks read from.
#[derive(Debug, Clone)]
pub enum StageInput {
    /// Inline records, one batch per partition.
    Inline(Vec<InlineBatch>),
    /// One file split per partition.
    Files(Vec<FileSplit>),
    /// Bucket `p` of every map task of stage `from`, for partition `p`.
    Shuffle {
        /// The stage that wrote the shuffle.
        from: StageId,
    },
}

/// Where a stage's tasks write to.
#[derive(Debug, Clone, PartialEq)]
pub enum StageOutput {
    /// Shuffle buckets, read by a later stage.
    Shuffle {
        /// Number of buckets each task writes.
        buckets: u32,
    },
    /// Batches for the driver.
    Driver,
    /// Text part files.
    TextFiles,
}

/// One stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The guest's work for every task of the stage (identical across partitions).
    pub guest: GuestTask,
    /// Input of the stage's tasks.
    pub input: StageInput,
    /// Output of the stage's tasks.
    pub output: StageOutput,
    /// Number of tasks.
    pub partitions: u32,
    /// Stages that must be complete first.
    pub parents: Vec<StageId>,
}

impl Stage {
    /// A short description for logs: the stage's source and sink labels.
    pub fn describe(&self) -> String {
        format!("{} → {}", self.guest.source.label, self.guest.sink.label)
    }
}

/// The stages of one action, parents first.
#[derive(Debug, Clone)]
pub struct JobGraph {
    /// All stages; the last is the action's.
    pub stages: Vec<Stage>,
}

/// Turn an action request into stages. `parallelism` is the number of slots (the default
/// partition count of shuffles), `split_bytes` the largest split of a plain text file.
pub fn plan_stages(
    request: &ActionRequest,
    data: &DataDir,
    parallelism: u32,
    split_bytes: Option<u64>,
) -> Result<JobGraph, PlanError> {
    let mut planner = Planner {
        request,
        data,
        parallelism: parallelism.max(1),
        split_bytes: split_bytes.unwrap_or(DEFAULT_SPLIT_BYTES),
        stages: Vec::new(),
        shuffles: HashMap::new(),
    };
    let output = match request.kind {
        ActionKind::ToDriver => StageOutput::Driver,
        ActionKind::SaveText { .. } => StageOutput::TextFiles,
    };
    planner.stage_for(request.target, request.sink.clone(), output)?;
    Ok(JobGraph { stages: planner.stages })
}

struct Planner<'a> {
    request: &'a ActionRequest,
    data: &'a DataDir,
    parallelism: u32,
    split_bytes: u64,
    stages: Vec<Stage>,
    /// Shuffle node → the stage writing it, so a shuffle used twice is computed once.
    shuffles: HashMap<NodeId, StageId>,
}

impl Planner<'_> {
    fn node(&self, id: NodeId) -> Result<&NodeKind, PlanError> {
        self.request
            .plan
            .nodes
            .get(id as usize)
            .map(|n| &n.kind)
            .ok_or_else(|| PlanError::Malformed(format!("node {id} does not exist")))
    }

    /// Build the stage that computes `target` and feeds it to `sink`.
    fn stage_for(
        &mut self,
        target: NodeId,
        sink: Call,
        output: StageOutput,
    ) -> Result<StageId, PlanError> {
        let mut ops = Vec::new();
        let mut at = target;
        let mut steps = 0;
        let (source, input, partitions, parents) = loop {
            steps += 1;
            if steps > self.request.plan.nodes.len() + 1 {
                return Err(PlanError::Malformed("the plan has a cycle".into()));
            }
            match self.node(at)?.clone() {
                NodeKind::Narrow { parent, op } => {
                    ops.push(op);
                    at = parent;
                }
                NodeKind::Source { source, decode } => {
                    let (input, partitions) = self.source_input(&source)?;
                    break (decode, input, partitions, Vec::new());
                }
                NodeKind::Shuffle { parent, partitions, write, read } => {
                    let from = self.shuffle_stage(at, parent, partitions, write)?;
                    let StageOutput::Shuffle { buckets } = self.stages[from].output else {
                        return Err(PlanError::Malformed("shuffle stage without buckets".into()));
                    };
                    break (read, StageInput::Shuffle { from }, buckets, vec![from]);
                }
            }
        };
        ops.reverse();
        let buckets = match output {
            StageOutput::Shuffle { buckets } => buckets,
            _ => 0,
        };
        self.stages.push(Stage {
            guest: GuestTask { source, ops, sink, buckets },
            input,
            output,
            partitions,
            parents,
        });
        Ok(self.stages.len() - 1)
    }

    fn shuffle_stage(
        &mut self,
        node: NodeId,
        parent: NodeId,
        partitions: Option<u32>,
        write: Call,
    ) -> Result<StageId, PlanError> {
        if let Some(&stage) = self.shuffles.get(&node) {
            return Ok(stage);
        }
        // Bucket count: as asked, else at least the parallelism and the parent's partitions.
        let id = self.stage_for(parent, write, StageOutput::Shuffle { buckets: 0 })?;
        let buckets = partitions.unwrap_or(self.parallelism.max(self.stages[id].partitions)).max(1);
        self.stages[id].output = StageOutput::Shuffle { buckets };
        self.stages[id].guest.buckets = buckets;
        self.shuffles.insert(node, id);
        Ok(id)
    }

    fn file_input(&self, path: &str, format: FileFormat) -> Result<(StageInput, u32), PlanError> {
        let files = self.data.resolve_inputs(path)?;
        let total = files.iter().map(|f| f.len).sum();
        let size = split_size(total, self.parallelism, self.split_bytes);
        let splits =
            plan_splits(&files, format, size).map_err(|e| PlanError::Input(e.to_string()))?;
        let n = splits.len() as u32;
        Ok((StageInput::Files(splits), n))
    }

    fn source_input(&self, source: &Source) -> Result<(StageInput, u32), PlanError> {
        Ok(match source {
            Source::Inline { partitions } => {
                (StageInput::Inline(partitions.clone()), partitions.len().max(1) as u32)
            }
            Source::TextFiles { path } => self.file_input(path, FileFormat::Text)?,
            Source::CsvFiles { path } => self.file_input(path, FileFormat::Csv)?,
        })
    }
}
