//! The physical plan: an action's stages, and how each builds the guest work of one of its
//! tasks.
//!
//! A stage is a tree of [`Pipe`]s — where its records come from (inputs, the buckets of earlier
//! stages' shuffles) and the narrow operators, unions, coalesces, co-partitioned merges and
//! products in between — followed by a sink (the action's, or a shuffle write). It runs as one
//! task per partition. Design choice: the tree is kept once per stage and each task's
//! [`GuestTask`] (its steps and inputs) is derived from it when the task is launched
//! ([`Stage::task`]), because partitions of one stage may differ in shape — partition *p* of a
//! union is a partition of one of its parents, one of a coalesce several of its parent's — and
//! a stage may have tens of thousands of them. Building the stages from a logical plan is the
//! [`crate::planner`]'s job.

use weft_abi::guest::{GuestStep, GuestTask};
use weft_abi::plan::{Call, DatasetId, InlineBatch};
use weft_abi::task::FileSplit;

/// Index of a stage in its [`JobGraph`].
pub type StageId = usize;

/// Where a stage's records come from, and what happens to them before the sink.
#[derive(Debug, Clone, PartialEq)]
pub enum Pipe {
    /// Records decoded from the job's input: partition *p* reads piece *p*.
    Source {
        /// The decoder.
        decode: Call,
        /// The pieces.
        input: SourceInput,
    },
    /// Records decoded from bucket *p* of every map task of stage `from`.
    Shuffled {
        /// The decoder.
        read: Call,
        /// The map stage.
        from: StageId,
        /// Its bucket count: this pipe's partitions.
        buckets: u32,
    },
    /// Narrow operators applied in order to the parent's records.
    Ops {
        /// The operators.
        ops: Vec<Call>,
        /// Their input.
        parent: Box<Pipe>,
    },
    /// The partitions of every parent, in order.
    Union {
        /// The parents.
        parents: Vec<Pipe>,
    },
    /// Consecutive parent partitions concatenated into fewer partitions.
    Coalesce {
        /// The concatenation.
        concat: Call,
        /// How many partitions (at most the parent's).
        partitions: u32,
        /// The parent.
        parent: Box<Pipe>,
    },
    /// Partition *p* of every side merged: a shuffle's reduce side, where a side is either
    /// fetched ([`Pipe::Shuffled`]) or a parent already partitioned the same way.
    Merge {
        /// The merge.
        merge: Call,
        /// The sides, all with the same number of partitions.
        sides: Vec<Pipe>,
    },
    /// Partition *p* read from block *p* of a cached dataset, which stage `from` computes (or
    /// computed in an earlier action).
    Cached {
        /// The decoder.
        read: Call,
        /// The stage that writes the blocks.
        from: StageId,
        /// How many there are.
        partitions: u32,
    },
    /// Partition `l · right + r` pairs partition `l` of the left parent with `r` of the right.
    Product {
        /// The pairing.
        product: Call,
        /// The left parent.
        left: Box<Pipe>,
        /// The right parent.
        right: Box<Pipe>,
    },
}

/// The pieces of a source, one per partition.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceInput {
    /// Inline records, one batch per partition.
    Inline(Vec<InlineBatch>),
    /// One file split per partition.
    Files(Vec<FileSplit>),
    /// Nothing: the tasks generate their records (`range`), in this many partitions.
    Generated(u32),
}

/// One input of one task, before the shuffle's map outputs are looked up.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskPart {
    /// Nothing (an empty partition, a generated source).
    Empty,
    /// Inline records.
    Inline(InlineBatch),
    /// A piece of a file.
    Split(FileSplit),
    /// Bucket `bucket` of every map task of stage `from`.
    Bucket {
        /// The map stage.
        from: StageId,
        /// The bucket.
        bucket: u32,
    },
    /// The block of partition `partition` of the cached dataset stage `from` writes.
    Block {
        /// The stage writing the blocks.
        from: StageId,
        /// The partition.
        partition: u32,
    },
}

impl Pipe {
    /// How many partitions the pipe has.
    pub fn partitions(&self) -> u64 {
        match self {
            Pipe::Source { input, .. } => match input {
                SourceInput::Inline(batches) => batches.len().max(1) as u64,
                SourceInput::Files(splits) => splits.len() as u64,
                SourceInput::Generated(n) => u64::from(*n),
            },
            Pipe::Shuffled { buckets, .. } => u64::from(*buckets),
            Pipe::Cached { partitions, .. } => u64::from(*partitions),
            Pipe::Ops { parent, .. } => parent.partitions(),
            Pipe::Union { parents } => parents.iter().map(Pipe::partitions).sum(),
            Pipe::Coalesce { partitions, parent, .. } => {
                u64::from(*partitions).min(parent.partitions())
            }
            Pipe::Merge { sides, .. } => sides.first().map_or(0, Pipe::partitions),
            Pipe::Product { left, right, .. } => left.partitions() * right.partitions(),
        }
    }

    /// The stages whose shuffles the pipe reads, in first-read order, once each.
    pub fn shuffle_reads(&self, out: &mut Vec<StageId>) {
        match self {
            Pipe::Source { .. } => {}
            Pipe::Shuffled { from, .. } | Pipe::Cached { from, .. } => {
                if !out.contains(from) {
                    out.push(*from);
                }
            }
            Pipe::Ops { parent, .. } | Pipe::Coalesce { parent, .. } => parent.shuffle_reads(out),
            Pipe::Union { parents: pipes } | Pipe::Merge { sides: pipes, .. } => {
                pipes.iter().for_each(|p| p.shuffle_reads(out))
            }
            Pipe::Product { left, right, .. } => {
                left.shuffle_reads(out);
                right.shuffle_reads(out);
            }
        }
    }

    /// The label of the first thing the pipe reads, for descriptions.
    fn first_label(&self) -> &str {
        match self {
            Pipe::Source { decode: call, .. }
            | Pipe::Shuffled { read: call, .. }
            | Pipe::Cached { read: call, .. } => &call.label,
            Pipe::Ops { parent, .. } | Pipe::Coalesce { parent, .. } => parent.first_label(),
            Pipe::Union { parents: pipes } | Pipe::Merge { sides: pipes, .. } => {
                pipes.first().map_or("", Pipe::first_label)
            }
            Pipe::Product { left, .. } => left.first_label(),
        }
    }
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
    /// The blocks of a cached dataset (one bucket each), kept for the job.
    Cache {
        /// The dataset.
        dataset: DatasetId,
    },
}

impl StageOutput {
    /// How many buckets each task writes, for outputs kept where the task ran.
    pub fn buckets(&self) -> Option<u32> {
        match self {
            StageOutput::Shuffle { buckets } => Some(*buckets),
            StageOutput::Cache { .. } => Some(1),
            StageOutput::Driver | StageOutput::Parts => None,
        }
    }
}

/// One stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Where the records come from and what happens to them.
    pub pipe: Pipe,
    /// What consumes them.
    pub sink: Call,
    /// Output of the stage's tasks.
    pub output: StageOutput,
    /// Number of tasks.
    pub partitions: u32,
    /// Stages that must be complete first: every one whose shuffle the stage reads.
    pub parents: Vec<StageId>,
    /// The dataset the stage computes (before its sink).
    pub dataset: DatasetId,
}

/// The stages of one action, parents first.
#[derive(Debug, Clone)]
pub struct JobGraph {
    /// All stages; the last is the action's.
    pub stages: Vec<Stage>,
}

impl Stage {
    /// A short description for logs: the stage's first source and its sink.
    pub fn describe(&self) -> String {
        format!("{} → {}", self.pipe.first_label(), self.sink.label)
    }

    /// The guest work of partition `p` and what each of its inputs reads.
    pub fn task(&self, p: u32) -> (GuestTask, Vec<TaskPart>) {
        let mut build = TaskBuilder { steps: Vec::new(), inputs: Vec::new() };
        build.pipe(&self.pipe, u64::from(p));
        let buckets = self.output.buckets().unwrap_or(0);
        let guest =
            GuestTask { steps: build.steps, sink: self.sink.clone(), buckets, partition: p };
        (guest, build.inputs)
    }
}

struct TaskBuilder {
    steps: Vec<GuestStep>,
    inputs: Vec<TaskPart>,
}

impl TaskBuilder {
    fn push(&mut self, step: GuestStep) -> u32 {
        self.steps.push(step);
        self.steps.len() as u32 - 1
    }

    fn input(&mut self, part: TaskPart) -> u32 {
        self.inputs.push(part);
        self.inputs.len() as u32 - 1
    }

    /// Add the steps of partition `p` of `pipe`; returns the step that yields its records.
    fn pipe(&mut self, pipe: &Pipe, p: u64) -> u32 {
        match pipe {
            Pipe::Source { decode, input } => {
                let part = match input {
                    SourceInput::Inline(batches) => {
                        batches.get(p as usize).cloned().map_or(TaskPart::Empty, TaskPart::Inline)
                    }
                    SourceInput::Files(splits) => {
                        splits.get(p as usize).cloned().map_or(TaskPart::Empty, TaskPart::Split)
                    }
                    SourceInput::Generated(_) => TaskPart::Empty,
                };
                let input = self.input(part);
                self.push(GuestStep::Source { call: decode.clone(), inputs: vec![input] })
            }
            Pipe::Shuffled { read, from, .. } => {
                let input = self.input(TaskPart::Bucket { from: *from, bucket: p as u32 });
                self.push(GuestStep::Source { call: read.clone(), inputs: vec![input] })
            }
            Pipe::Cached { read, from, .. } => {
                let input = self.input(TaskPart::Block { from: *from, partition: p as u32 });
                self.push(GuestStep::Source { call: read.clone(), inputs: vec![input] })
            }
            Pipe::Ops { ops, parent } => {
                let mut from = self.pipe(parent, p);
                for op in ops {
                    from = self.push(GuestStep::Op { call: op.clone(), from });
                }
                from
            }
            Pipe::Union { parents } => {
                let mut start = 0;
                for parent in parents {
                    let n = parent.partitions();
                    if p < start + n {
                        return self.pipe(parent, p - start);
                    }
                    start += n;
                }
                unreachable!("partition {p} of a union of {start} partitions")
            }
            Pipe::Coalesce { concat, partitions, parent } => {
                let (n, of) =
                    (u64::from(*partitions).min(parent.partitions()), parent.partitions());
                let from = (p * of / n..(p + 1) * of / n).map(|q| self.pipe(parent, q)).collect();
                self.push(GuestStep::Merge { call: concat.clone(), from })
            }
            Pipe::Merge { merge, sides } => {
                let from = sides.iter().map(|side| self.pipe(side, p)).collect();
                self.push(GuestStep::Merge { call: merge.clone(), from })
            }
            Pipe::Product { product, left, right } => {
                let r = right.partitions();
                let from = vec![self.pipe(left, p / r), self.pipe(right, p % r)];
                self.push(GuestStep::Merge { call: product.clone(), from })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_abi::plan::FnRef;

    fn call(label: &str) -> Call {
        Call { label: label.into(), func: FnRef(1), arg: Vec::new() }
    }

    fn inline(label: &str, n: u8) -> Pipe {
        let batches = (0..n).map(|i| InlineBatch(vec![i])).collect();
        Pipe::Source { decode: call(label), input: SourceInput::Inline(batches) }
    }

    fn stage(pipe: Pipe) -> Stage {
        let partitions = pipe.partitions() as u32;
        Stage {
            pipe,
            sink: call("collect"),
            output: StageOutput::Driver,
            partitions,
            parents: vec![],
            dataset: DatasetId(1),
        }
    }

    fn labels(guest: &GuestTask) -> Vec<&str> {
        guest.steps.iter().map(|s| s.call().label.as_str()).collect()
    }

    #[test]
    fn a_union_partition_is_a_partition_of_one_parent() {
        let ops = |parent| Pipe::Ops { ops: vec![call("map")], parent: Box::new(parent) };
        let s = stage(Pipe::Union { parents: vec![ops(inline("a", 2)), inline("b", 3)] });
        assert_eq!(s.partitions, 5);
        let (guest, inputs) = s.task(1);
        assert_eq!((labels(&guest), guest.partition), (vec!["a", "map"], 1));
        assert_eq!(inputs, [TaskPart::Inline(InlineBatch(vec![1]))]);
        let (guest, inputs) = s.task(4);
        assert_eq!(labels(&guest), ["b"]);
        assert_eq!(inputs, [TaskPart::Inline(InlineBatch(vec![2]))]);
        assert_eq!(s.describe(), "a → collect");
    }

    #[test]
    fn a_coalesced_partition_concatenates_consecutive_parent_partitions() {
        let s = stage(Pipe::Coalesce {
            concat: call("coalesce"),
            partitions: 2,
            parent: Box::new(inline("a", 5)),
        });
        assert_eq!(s.partitions, 2);
        let (guest, inputs) = s.task(1);
        assert_eq!(labels(&guest), ["a", "a", "a", "coalesce"]);
        assert_eq!(
            guest.steps[3],
            GuestStep::Merge { call: call("coalesce"), from: vec![0, 1, 2] }
        );
        let batches: Vec<_> = (2..5).map(|i| TaskPart::Inline(InlineBatch(vec![i]))).collect();
        assert_eq!(inputs, batches);
        // Asking for more partitions than the parent has keeps the parent's.
        let more =
            Pipe::Coalesce { concat: call("c"), partitions: 9, parent: Box::new(inline("a", 3)) };
        assert_eq!(more.partitions(), 3);
    }

    #[test]
    fn merges_and_products_read_every_side() {
        let merged = stage(Pipe::Merge {
            merge: call("cogroup"),
            sides: vec![
                Pipe::Shuffled { read: call("read"), from: 0, buckets: 4 },
                Pipe::Ops {
                    ops: vec![call("local")],
                    parent: Box::new(Pipe::Shuffled { read: call("read"), from: 2, buckets: 4 }),
                },
            ],
        });
        let (guest, inputs) = merged.task(3);
        assert_eq!(labels(&guest), ["read", "read", "local", "cogroup"]);
        assert_eq!(
            inputs,
            [TaskPart::Bucket { from: 0, bucket: 3 }, TaskPart::Bucket { from: 2, bucket: 3 }]
        );
        let mut reads = Vec::new();
        merged.pipe.shuffle_reads(&mut reads);
        assert_eq!(reads, [0, 2]);

        let product = stage(Pipe::Product {
            product: call("cartesian"),
            left: Box::new(inline("l", 2)),
            right: Box::new(inline("r", 3)),
        });
        assert_eq!(product.partitions, 6);
        let (_, inputs) = product.task(4);
        assert_eq!(
            inputs,
            [TaskPart::Inline(InlineBatch(vec![1])), TaskPart::Inline(InlineBatch(vec![1]))]
        );
    }
}
