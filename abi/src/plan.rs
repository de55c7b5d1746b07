//! The logical plan: what a job's driver sends to the host when it runs an action.
//!
//! A [`Plan`] is a small DAG of [`PlanNode`]s in topological order (every parent has a smaller
//! index than its children). It is built lazily by the SDK's `Dataset` transformations in
//! the guest and serialised with MessagePack when an action runs. The host (the coordinator) never
//! runs user code itself: it cuts the plan into stages at shuffle boundaries and hands each task a
//! [`GuestTask`](crate::guest::GuestTask) made of the [`Call`]s found here.
//!
//! # Why calls are function-table indices
//!
//! User closures are compiled into the job's module. The same module is instantiated for every
//! task, so a function's index in the module's indirect function table names the same code in every
//! instance, on every node. A [`Call`] therefore carries a [`FnRef`] (that index, pointing at a
//! monomorphised trampoline such as "apply closure `F` from `T` to `U`") plus the serialised value
//! the trampoline needs (`map_with`'s value, a partition count…). The host treats both as opaque.
//!
//! # Parents, dataset ids
//!
//! A node lists its parents by index in the plan, so nodes with several parents (union, cogroup,
//! join) have the same shape as the rest; a shuffle lists one map-side `write` per parent and its
//! reduce side reads input *i* from parent *i*. Every node also carries the [`DatasetId`] the
//! guest gave its dataset when it was created, which stays the same in every action of the job:
//! plans of different actions index their nodes afresh, but a dataset used by two actions has one
//! id, so that the host can recognise what it computed before (a cached dataset, a shuffle).

use crate::limits::{
    MAX_INLINE_PARTITION_BYTES, MAX_LABEL_BYTES, MAX_PARTITIONS, MAX_PLAN_NODES, MAX_STAGES,
};
use serde::{Deserialize, Serialize};

/// Index of a node inside its [`Plan`].
pub type NodeIndex = u32;

/// A dataset's identity for the whole life of a job (unique within the job's driver).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetId(pub u64);

/// A function of the job's own module, named by its index in the module's function table.
///
/// Only meaningful inside an instance of the module that produced it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FnRef(pub u32);

/// One step of guest work: a trampoline in the module, its label for error messages, and the
/// serialised argument the trampoline decodes once per task.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Call {
    /// Human-readable operator name with the user's source location, e.g. `map at src/main.rs:9:10`.
    pub label: String,
    /// The trampoline to call.
    pub func: FnRef,
    /// Its argument, MessagePack or raw bytes as the trampoline expects; often empty.
    #[serde(with = "crate::bytes_serde")]
    pub arg: Vec<u8>,
}

/// A logical plan: nodes in topological order.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// All nodes reachable from the action's target; parents come before children.
    pub nodes: Vec<PlanNode>,
}

/// One dataset in the plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PlanNode {
    /// The dataset's id, the same in every action of the job.
    pub dataset: DatasetId,
    /// The datasets it is computed from, by index in the plan (all smaller than this node's).
    pub parents: Vec<NodeIndex>,
    /// How it is computed from them.
    pub kind: NodeKind,
    /// Set when the dataset is cached: how its partitions are kept and read back.
    #[serde(default)]
    pub cache: Option<CacheCalls>,
}

/// How a cached dataset's partitions are written as blocks and read back.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CacheCalls {
    /// A sink that writes a partition's records as its block (one bucket).
    pub write: Call,
    /// A source that decodes a block back into records.
    pub read: Call,
}

/// How a dataset is derived from its parents.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// Records read by the host from outside the plan; no parents.
    Source {
        /// Where the records come from.
        source: Source,
        /// Turns the host's input batches into the node's records.
        decode: Call,
    },
    /// A one-to-one-partition transformation (map, filter, flat_map, map_partitions…) of its one
    /// parent; fused with it into one pass.
    Narrow {
        /// The transformation.
        op: Call,
        /// It keeps every record's key (`map_values`, `filter`…), so a parent partitioned by key
        /// stays partitioned the same way.
        keeps_partitioning: bool,
    },
    /// The partitions of every parent, in order (`union`): nothing moves.
    Union,
    /// Fewer partitions made of consecutive parent partitions (`coalesce`): nothing moves.
    Coalesce {
        /// How many (at most the parent's; more leaves the parent's count).
        partitions: u32,
        /// Concatenates the parent partitions' records.
        concat: Call,
    },
    /// Every pair of a record of the first parent and one of the second (`cartesian`): one
    /// partition per pair of parent partitions.
    Cartesian {
        /// Pairs a partition of each parent.
        product: Call,
    },
    /// A shuffle: each parent's tasks write buckets, and each task of this node reads one bucket
    /// from every map task of every parent, then merges them (input *i* from parent *i*).
    Shuffle {
        /// Number of output partitions; `None` lets the coordinator choose.
        partitions: Option<u32>,
        /// One per parent, in order.
        sides: Vec<ShuffleSide>,
        /// Reduce side: merges the sides' records (one stream per side) into the node's.
        merge: Call,
        /// Buckets are chosen by the hash of each `(K, V)` record's key, so output partition *p*
        /// holds exactly the keys of bucket *p*: a later shuffle with as many buckets need not
        /// move this node's records again (a narrow dependency).
        hash_partitioned: bool,
    },
}

/// One parent's part in a [`NodeKind::Shuffle`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ShuffleSide {
    /// Map side: buckets (and, for `reduce_by_key`, combines) the parent's records; the host
    /// passes the bucket count.
    pub write: Call,
    /// Reduce side: decodes this side's fetched buckets into records.
    pub read: Call,
    /// For a hash-partitioned shuffle whose parent is already partitioned like it: what turns the
    /// parent's records into the ones `read` would give (the map-side combine of
    /// `aggregate_by_key`), or `None` when they are the same.
    pub local: Option<Call>,
}

/// Where a source node's records come from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Source {
    /// Records that travel inside the plan (`parallelize`), one MessagePack batch per partition.
    Inline {
        /// The encoded partitions.
        partitions: Vec<InlineBatch>,
    },
    /// Lines of text files (`text_file`): a file, a directory or a glob, relative to the job's data
    /// directory. `.gz` files are decompressed; big plain files are split into several partitions.
    TextFiles {
        /// The path as the user wrote it.
        path: String,
    },
    /// Rows of CSV files with a header row (`csv`): one partition per file.
    CsvFiles {
        /// The path as the user wrote it.
        path: String,
    },
    /// Records the tasks generate themselves (`range`): nothing is read or shipped.
    Generated {
        /// How many partitions.
        partitions: u32,
    },
}

/// One partition of inline records, MessagePack-encoded.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct InlineBatch(#[serde(with = "crate::bytes_serde")] pub Vec<u8>);

/// What an action does with the records of its target dataset.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ActionKind {
    /// Every task's output goes back to the driver (collect, count, take, reduce, first).
    ToDriver,
    /// Every task writes its output as one text file `part-NNNNN` under this directory (relative
    /// to the data directory); the directory appears only when all parts are complete.
    SaveText {
        /// The output directory as the user wrote it.
        path: String,
    },
}

/// An action as the driver asks the host to run it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ActionRequest {
    /// The plan, ending at the action's target.
    pub plan: Plan,
    /// The dataset the action consumes.
    pub target: NodeIndex,
    /// The sink every task of the final stage runs.
    pub sink: Call,
    /// Where the sink's output goes.
    pub kind: ActionKind,
    /// Cached datasets the driver stopped keeping since its last action.
    #[serde(default)]
    pub unpersist: Vec<DatasetId>,
    /// Broadcast values the driver created since its last action (each is sent once).
    #[serde(default)]
    pub broadcasts: Vec<BroadcastValue>,
}

/// A broadcast value as the driver sends it: its id in the job and its MessagePack encoding.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BroadcastValue {
    /// Numbered by the driver.
    pub id: u64,
    /// The encoded value.
    #[serde(with = "crate::bytes_serde")]
    pub bytes: Vec<u8>,
}

/// What the host returns to the driver for a [`ActionKind::ToDriver`] action: every batch the
/// final stage's tasks emitted, in partition order.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ActionOutput {
    /// Emitted batches, partition by partition.
    pub batches: Vec<InlineBatch>,
    /// What the action added to each accumulator, every partition of every stage counted once.
    #[serde(default)]
    pub accumulators: Vec<crate::guest::AccumulatorUpdate>,
}

/// The host's answer to an action: its output or the reason it failed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ActionReply {
    /// The action succeeded.
    Done(ActionOutput),
    /// The action failed; the message names the stage, the task and the cause.
    Failed(String),
}

impl Call {
    fn check(&self) -> Result<(), String> {
        if self.label.len() > MAX_LABEL_BYTES {
            return Err(format!(
                "an operator label of {} bytes is longer than the {MAX_LABEL_BYTES} byte limit",
                self.label.len()
            ));
        }
        Ok(())
    }
}

impl ActionRequest {
    /// Check the request's shape and bounds: at most [`MAX_PLAN_NODES`] nodes, parents before
    /// children, the number of parents each kind of node takes, partition counts within
    /// [`MAX_PARTITIONS`], labels within [`MAX_LABEL_BYTES`]. The message names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let nodes = &self.plan.nodes;
        if nodes.len() > MAX_PLAN_NODES {
            return Err(format!(
                "the plan has {} nodes, more than the {MAX_PLAN_NODES} limit",
                nodes.len()
            ));
        }
        if self.target as usize >= nodes.len() {
            return Err(format!("the action's target {} is not a node of the plan", self.target));
        }
        self.sink.check()?;
        // Nodes other than narrow ones between a node and its sources: how deep the planner's
        // recursion will go.
        let mut depth = vec![0usize; nodes.len()];
        for (i, node) in nodes.iter().enumerate() {
            if let Some(&p) = node.parents.iter().find(|&&p| p as usize >= i) {
                return Err(format!(
                    "node {i} lists node {p} as a parent, which does not precede it"
                ));
            }
            let nested = usize::from(!matches!(node.kind, NodeKind::Narrow { .. }));
            depth[i] = node.parents.iter().map(|&p| depth[p as usize]).max().unwrap_or(0) + nested;
            if depth[i] >= MAX_STAGES {
                return Err(format!(
                    "the plan nests {} shuffles, unions, coalesces and products; at most {} are \
                     allowed",
                    depth[i],
                    MAX_STAGES - 1
                ));
            }
            let parents = node.parents.len();
            match &node.kind {
                NodeKind::Source { source, decode } => {
                    decode.check()?;
                    if parents != 0 {
                        return Err(format!("source node {i} has {parents} parents"));
                    }
                    if let Source::Generated { partitions } = source
                        && *partitions > MAX_PARTITIONS
                    {
                        return Err(partitions_error(u64::from(*partitions), &decode.label));
                    }
                    if let Source::Inline { partitions } = source {
                        if partitions.len() > MAX_PARTITIONS as usize {
                            return Err(partitions_error(partitions.len() as u64, &decode.label));
                        }
                        if let Some(big) =
                            partitions.iter().find(|p| p.0.len() > MAX_INLINE_PARTITION_BYTES)
                        {
                            return Err(format!(
                                "`{}` has a partition of {} MiB; at most {} MiB are allowed: \
                                 spread the records over more partitions",
                                decode.label,
                                big.0.len() >> 20,
                                MAX_INLINE_PARTITION_BYTES >> 20
                            ));
                        }
                    }
                }
                NodeKind::Narrow { op, .. } => {
                    op.check()?;
                    if parents != 1 {
                        return Err(format!("narrow node {i} has {parents} parents, not 1"));
                    }
                }
                NodeKind::Union => {
                    if parents == 0 {
                        return Err(format!("union node {i} has no parents"));
                    }
                }
                NodeKind::Coalesce { partitions, concat } => {
                    concat.check()?;
                    if parents != 1 {
                        return Err(format!("coalesce node {i} has {parents} parents, not 1"));
                    }
                    if *partitions == 0 || *partitions > MAX_PARTITIONS {
                        return Err(partitions_error(u64::from(*partitions), &concat.label));
                    }
                }
                NodeKind::Cartesian { product } => {
                    product.check()?;
                    if parents != 2 {
                        return Err(format!("product node {i} has {parents} parents, not 2"));
                    }
                }
                NodeKind::Shuffle { partitions, sides, merge, .. } => {
                    merge.check()?;
                    for side in sides {
                        side.write.check()?;
                        side.read.check()?;
                        side.local.as_ref().map_or(Ok(()), Call::check)?;
                    }
                    if parents == 0 || sides.len() != parents {
                        return Err(format!(
                            "shuffle node {i} has {parents} parents and {} map sides",
                            sides.len()
                        ));
                    }
                    if let Some(n) = partitions
                        && *n > MAX_PARTITIONS
                    {
                        return Err(partitions_error(*n as u64, &merge.label));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The message for a partition count over [`MAX_PARTITIONS`].
pub fn partitions_error(asked: u64, label: &str) -> String {
    if asked == 0 {
        return format!("`{label}` asks for 0 partitions; at least 1 is needed");
    }
    format!("`{label}` asks for {asked} partitions; at most {MAX_PARTITIONS} are allowed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(label: &str) -> Call {
        Call { label: label.into(), func: FnRef(1), arg: Vec::new() }
    }

    fn request(nodes: Vec<PlanNode>, target: NodeIndex) -> ActionRequest {
        ActionRequest {
            plan: Plan { nodes },
            target,
            sink: call("sink"),
            kind: ActionKind::ToDriver,
            unpersist: vec![],
            broadcasts: vec![],
        }
    }

    fn source() -> PlanNode {
        PlanNode {
            dataset: DatasetId(1),
            cache: None,
            parents: vec![],
            kind: NodeKind::Source {
                source: Source::Inline { partitions: vec![] },
                decode: call("parallelize"),
            },
        }
    }

    fn side() -> ShuffleSide {
        ShuffleSide { write: call("write"), read: call("read"), local: None }
    }

    fn shuffle(parents: Vec<NodeIndex>, partitions: Option<u32>) -> PlanNode {
        PlanNode {
            dataset: DatasetId(2),
            cache: None,
            parents,
            kind: NodeKind::Shuffle {
                partitions,
                sides: vec![side()],
                merge: call("reduce_by_key at x.rs:1:1"),
                hash_partitioned: true,
            },
        }
    }

    #[test]
    fn a_well_formed_plan_passes() {
        request(vec![source(), shuffle(vec![0], Some(MAX_PARTITIONS))], 1).validate().unwrap();
    }

    #[test]
    fn malformed_and_oversized_plans_are_refused_with_the_reason() {
        let too_many = request(vec![source(), shuffle(vec![0], Some(u32::MAX))], 1);
        let e = too_many.validate().unwrap_err();
        assert!(e.contains("`reduce_by_key at x.rs:1:1` asks for 4294967295 partitions"), "{e}");
        let forward = request(vec![shuffle(vec![1], None), source()], 0).validate().unwrap_err();
        assert!(forward.contains("does not precede it"), "{forward}");
        let no_target = request(vec![source()], 3).validate().unwrap_err();
        assert!(no_target.contains("not a node of the plan"), "{no_target}");
        let sides = request(vec![source(), shuffle(vec![0, 0], None)], 1).validate().unwrap_err();
        assert!(sides.contains("2 parents and 1 map sides"), "{sides}");
        let mut long = request(vec![source()], 0);
        long.sink.label = "x".repeat(MAX_LABEL_BYTES + 1);
        assert!(long.validate().unwrap_err().contains("label"));
        let huge = request((0..MAX_PLAN_NODES + 1).map(|_| source()).collect(), 0);
        assert!(huge.validate().unwrap_err().contains("nodes, more than"));
        // A chain of shuffles deeper than the planner goes is refused before planning.
        let mut chain = vec![source()];
        chain.extend((0..MAX_STAGES as u32).map(|i| shuffle(vec![i], None)));
        let deep = request(chain, MAX_STAGES as u32).validate().unwrap_err();
        assert!(deep.contains("nests"), "{deep}");
        let lonely = PlanNode {
            dataset: DatasetId(3),
            parents: vec![0],
            kind: NodeKind::Union,
            cache: None,
        };
        request(vec![source(), lonely.clone()], 1).validate().unwrap();
        let orphan = PlanNode { parents: vec![], ..lonely };
        assert!(request(vec![orphan], 0).validate().unwrap_err().contains("no parents"));
        let coalesce = |n| PlanNode {
            dataset: DatasetId(4),
            cache: None,
            parents: vec![0],
            kind: NodeKind::Coalesce { partitions: n, concat: call("coalesce at y.rs:2:2") },
        };
        let zero = request(vec![source(), coalesce(0)], 1).validate().unwrap_err();
        assert!(
            zero.contains("`coalesce at y.rs:2:2` asks for 0 partitions; at least 1"),
            "{zero}"
        );
        let one_sided = PlanNode {
            dataset: DatasetId(5),
            cache: None,
            parents: vec![0],
            kind: NodeKind::Cartesian { product: call("cartesian") },
        };
        let e = request(vec![source(), one_sided], 1).validate().unwrap_err();
        assert!(e.contains("1 parents, not 2"), "{e}");
    }
}
