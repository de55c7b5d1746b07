//! Physical planning: cut a logical plan into stages at shuffle boundaries.
//!
//! A stage is a list of inputs (files, inline records, or the buckets of one or several
//! shuffles), the narrow operators that follow them, and a sink (the action's, or a shuffle
//! write). It runs as one task per partition; input *i* of every task is the task's piece of
//! stage input *i*. Stages are listed parents first; the last one is the action's.
//!
//! The planner trusts nothing in the plan: the request is validated first
//! ([`ActionRequest::validate`]), and every count it derives (file splits, shuffle cells) is held
//! to the bounds of [`weft_abi::limits`].

use std::collections::HashMap;
use thiserror::Error;
use weft_abi::guest::GuestTask;
use weft_abi::limits::{MAX_PARTITIONS, MAX_SHUFFLE_CELLS, MAX_STAGES, MAX_TASKS};
use weft_abi::plan::{
    ActionKind, ActionRequest, Call, DatasetId, InlineBatch, NodeIndex, NodeKind, Source,
};
use weft_abi::task::{FileFormat, FileSplit};
use weft_storage::input::{DEFAULT_SPLIT_BYTES, plan_splits, split_size};
use weft_storage::{Storage, StorageError};

/// Index of a stage in its [`JobGraph`].
pub type StageId = usize;

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

/// Where one input of a stage's tasks comes from.
#[derive(Debug, Clone, PartialEq)]
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
    /// Parts of an output directory.
    Parts,
}

/// One stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The guest's work for every task of the stage (identical across partitions).
    pub guest: GuestTask,
    /// The inputs of the stage's tasks, by input index.
    pub inputs: Vec<StageInput>,
    /// Output of the stage's tasks.
    pub output: StageOutput,
    /// Number of tasks.
    pub partitions: u32,
    /// Stages that must be complete first.
    pub parents: Vec<StageId>,
    /// The dataset the stage computes (before its sink).
    pub dataset: DatasetId,
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

struct Planner<'a> {
    request: &'a ActionRequest,
    storage: &'a dyn Storage,
    parallelism: u32,
    split_bytes: u64,
    stages: Vec<Stage>,
    /// Shuffle node → the stages writing it (one per parent), so a shuffle used twice is
    /// computed once.
    shuffles: HashMap<NodeIndex, Vec<StageId>>,
}

impl Planner<'_> {
    fn node(&self, at: NodeIndex) -> &weft_abi::plan::PlanNode {
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
        let mut ops = Vec::new();
        let mut at = target;
        // Narrow nodes have one parent each and come after it, so this walk ends.
        let (source, inputs, partitions, parents) = loop {
            let node = self.node(at).clone();
            match node.kind {
                NodeKind::Narrow { op } => {
                    ops.push(op);
                    at = node.parents[0];
                }
                NodeKind::Source { source, decode } => {
                    let (input, partitions) = self.source_input(&source, &decode)?;
                    break (decode, vec![input], partitions, Vec::new());
                }
                NodeKind::Shuffle { partitions, writes, read } => {
                    let from = self.shuffle_stages(at, &node.parents, partitions, writes, &read)?;
                    let StageOutput::Shuffle { buckets } = self.stages[from[0]].output else {
                        unreachable!("shuffle stages write buckets");
                    };
                    let inputs = from.iter().map(|&from| StageInput::Shuffle { from }).collect();
                    break (read, inputs, buckets, from);
                }
            }
        };
        ops.reverse();
        if self.stages.len() >= MAX_STAGES {
            return Err(PlanError::Refused(format!(
                "the action would be cut into more than {MAX_STAGES} stages (shuffles)"
            )));
        }
        let buckets = match output {
            StageOutput::Shuffle { buckets } => buckets,
            _ => 0,
        };
        self.stages.push(Stage {
            guest: GuestTask { source, ops, sink, buckets },
            inputs,
            output,
            partitions,
            parents,
            dataset: self.node(target).dataset,
        });
        Ok(self.stages.len() - 1)
    }

    /// The map stages of shuffle node `node`, one per parent, all writing the same number of
    /// buckets.
    fn shuffle_stages(
        &mut self,
        node: NodeIndex,
        parents: &[NodeIndex],
        partitions: Option<u32>,
        writes: Vec<Call>,
        read: &Call,
    ) -> Result<Vec<StageId>, PlanError> {
        if let Some(stages) = self.shuffles.get(&node) {
            return Ok(stages.clone());
        }
        let mut stages = Vec::with_capacity(parents.len());
        for (&parent, write) in parents.iter().zip(writes) {
            stages.push(self.stage_for(parent, write, StageOutput::Shuffle { buckets: 0 })?);
        }
        // Bucket count: as asked, else at least the parallelism and the parents' partitions.
        let widest = stages.iter().map(|&s| self.stages[s].partitions).max().unwrap_or(1);
        let buckets = partitions.unwrap_or(self.parallelism.max(widest)).clamp(1, MAX_PARTITIONS);
        for &s in &stages {
            let cells = u64::from(self.stages[s].partitions) * u64::from(buckets);
            if cells > MAX_SHUFFLE_CELLS {
                return Err(PlanError::Refused(format!(
                    "`{}` would shuffle {} map tasks into {buckets} buckets, more than \
                     {MAX_SHUFFLE_CELLS} pieces; ask for fewer partitions or larger input splits",
                    read.label, self.stages[s].partitions
                )));
            }
            self.stages[s].output = StageOutput::Shuffle { buckets };
            self.stages[s].guest.buckets = buckets;
        }
        self.shuffles.insert(node, stages.clone());
        Ok(stages)
    }

    fn file_input(
        &self,
        path: &str,
        format: FileFormat,
        label: &str,
    ) -> Result<(StageInput, u32), PlanError> {
        let files = self.storage.list(path)?;
        let total = files.iter().map(|f| f.len).sum();
        let size = split_size(total, self.parallelism, self.split_bytes);
        let splits = plan_splits(self.storage, &files, format, size)?;
        if splits.len() > MAX_PARTITIONS as usize {
            return Err(PlanError::Refused(format!(
                "`{label}` reads {} files and splits, more than the {MAX_PARTITIONS} tasks a \
                 stage may have; use larger splits or fewer files",
                splits.len()
            )));
        }
        let n = splits.len() as u32;
        Ok((StageInput::Files(splits), n))
    }

    fn source_input(&self, source: &Source, decode: &Call) -> Result<(StageInput, u32), PlanError> {
        Ok(match source {
            Source::Inline { partitions } => {
                (StageInput::Inline(partitions.clone()), partitions.len().max(1) as u32)
            }
            Source::TextFiles { path } => self.file_input(path, FileFormat::Text, &decode.label)?,
            Source::CsvFiles { path } => self.file_input(path, FileFormat::Csv, &decode.label)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_abi::plan::{FnRef, Plan, PlanNode};
    use weft_storage::DataDir;

    fn call(label: &str) -> Call {
        Call { label: label.into(), func: FnRef(1), arg: Vec::new() }
    }

    fn node(dataset: u64, parents: Vec<NodeIndex>, kind: NodeKind) -> PlanNode {
        PlanNode { dataset: DatasetId(dataset), parents, kind }
    }

    fn inline(partitions: usize) -> NodeKind {
        NodeKind::Source {
            source: Source::Inline { partitions: vec![InlineBatch(vec![]); partitions] },
            decode: call("parallelize"),
        }
    }

    fn plan(nodes: Vec<PlanNode>) -> JobGraph {
        let target = nodes.len() as u32 - 1;
        let request = ActionRequest {
            plan: Plan { nodes },
            target,
            sink: call("collect"),
            kind: ActionKind::ToDriver,
        };
        let dir = tempfile::tempdir().unwrap();
        plan_stages(&request, &DataDir::new(dir.path()).unwrap(), 4, None).unwrap()
    }

    #[test]
    fn narrow_nodes_fuse_and_a_shuffle_makes_a_new_stage() {
        let graph = plan(vec![
            node(1, vec![], inline(3)),
            node(2, vec![0], NodeKind::Narrow { op: call("map") }),
            node(
                3,
                vec![1],
                NodeKind::Shuffle { partitions: None, writes: vec![call("w")], read: call("r") },
            ),
            node(4, vec![2], NodeKind::Narrow { op: call("filter") }),
        ]);
        assert_eq!(graph.stages.len(), 2);
        let (map, reduce) = (&graph.stages[0], &graph.stages[1]);
        assert_eq!((map.partitions, &map.output), (3, &StageOutput::Shuffle { buckets: 4 }));
        assert_eq!(map.guest.ops.len(), 1);
        assert_eq!(reduce.inputs, [StageInput::Shuffle { from: 0 }]);
        assert_eq!(
            (reduce.partitions, &reduce.parents, reduce.dataset),
            (4, &vec![0], DatasetId(4))
        );
        assert_eq!(reduce.guest.source.label, "r");
    }

    #[test]
    fn a_shuffle_of_two_parents_reads_both_as_inputs_with_one_bucket_count() {
        let graph = plan(vec![
            node(1, vec![], inline(2)),
            node(2, vec![], inline(7)),
            node(
                3,
                vec![0, 1],
                NodeKind::Shuffle {
                    partitions: None,
                    writes: vec![call("left"), call("right")],
                    read: call("cogroup"),
                },
            ),
        ]);
        assert_eq!(graph.stages.len(), 3);
        let last = &graph.stages[2];
        assert_eq!(last.inputs, [StageInput::Shuffle { from: 0 }, StageInput::Shuffle { from: 1 }]);
        assert_eq!(last.partitions, 7, "as many buckets as the widest parent");
        for s in &graph.stages[..2] {
            assert_eq!(s.output, StageOutput::Shuffle { buckets: 7 });
        }
    }

    #[test]
    fn too_many_shuffle_pieces_are_refused_before_anything_runs() {
        let request = ActionRequest {
            plan: Plan {
                nodes: vec![
                    node(1, vec![], inline(MAX_PARTITIONS as usize)),
                    node(
                        2,
                        vec![0],
                        NodeKind::Shuffle {
                            partitions: Some(MAX_PARTITIONS),
                            writes: vec![call("w")],
                            read: call("reduce_by_key_into at job.rs:3:4"),
                        },
                    ),
                ],
            },
            target: 1,
            sink: call("collect"),
            kind: ActionKind::ToDriver,
        };
        let dir = tempfile::tempdir().unwrap();
        let err = plan_stages(&request, &DataDir::new(dir.path()).unwrap(), 2, None).unwrap_err();
        assert!(err.to_string().contains("reduce_by_key_into at job.rs:3:4"), "{err}");
    }
}
