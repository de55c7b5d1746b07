//! The logical plan: what a job's driver sends to the host when it runs an action.
//!
//! A [`Plan`] is a small DAG of [`PlanNode`]s in topological order (every parent has a smaller
//! index than its children). It is built lazily by [`Dataset`](crate::Dataset) transformations in
//! the guest and serialised with MessagePack when an action runs. The host (the coordinator) never
//! runs user code itself: it cuts the plan into stages at shuffle boundaries and hands each task a
//! [`GuestTask`](crate::abi::GuestTask) made of the [`Call`]s found here.
//!
//! # Why calls are function-table indices
//!
//! User closures are compiled into the job's module. The same module is instantiated for every
//! task, so a function's index in the module's indirect function table names the same code in every
//! instance, on every node. A [`Call`] therefore carries a [`FnRef`] (that index, pointing at a
//! monomorphised trampoline such as "apply closure `F` from `T` to `U`") plus the serialised value
//! the trampoline needs (`map_with`'s value, a partition count…). The host treats both as opaque.
//!
//! Multi-parent nodes (union, cogroup, join) and cached nodes fit the same shape: a node lists its
//! parents, and a stage may read from several shuffles; only single-parent nodes exist today.

use serde::{Deserialize, Serialize};

/// Index of a node inside its [`Plan`].
pub type NodeId = u32;

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
    #[serde(with = "serde_bytes_compat")]
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
    /// What this dataset is computed from.
    pub kind: NodeKind,
}

/// How a dataset is derived.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// Records read by the host from outside the plan.
    Source {
        /// Where the records come from.
        source: Source,
        /// Turns the host's input batches into the node's records.
        decode: Call,
    },
    /// A one-to-one-partition transformation (map, filter, flat_map, map_partitions…); fused with
    /// its parent into one pass.
    Narrow {
        /// The parent dataset.
        parent: NodeId,
        /// The transformation.
        op: Call,
    },
    /// A hash shuffle of `(K, V)` records: the parent's tasks write buckets, the child's tasks read
    /// one bucket from every parent task.
    Shuffle {
        /// The parent dataset (a dataset of pairs).
        parent: NodeId,
        /// Number of output partitions; `None` lets the coordinator choose.
        partitions: Option<u32>,
        /// Map side: partitions (and, for `reduce_by_key`, combines) the parent's records. Its
        /// argument is extended by the coordinator with the bucket count.
        write: Call,
        /// Reduce side: merges the fetched buckets into the node's records.
        read: Call,
    },
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
}

/// One partition of inline records, MessagePack-encoded.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct InlineBatch(#[serde(with = "serde_bytes_compat")] pub Vec<u8>);

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
    pub target: NodeId,
    /// The sink every task of the final stage runs.
    pub sink: Call,
    /// Where the sink's output goes.
    pub kind: ActionKind,
}

/// What the host returns to the driver for a [`ActionKind::ToDriver`] action: every batch the
/// final stage's tasks emitted, in partition order.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ActionOutput {
    /// Emitted batches, partition by partition.
    pub batches: Vec<InlineBatch>,
}

/// The host's answer to an action: its output or the reason it failed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ActionReply {
    /// The action succeeded.
    Done(ActionOutput),
    /// The action failed; the message names the stage, the task and the cause.
    Failed(String),
}

/// Serde helper that (de)serialises `Vec<u8>` as a MessagePack `bin` rather than an array of
/// integers, which is both smaller and much faster to decode.
pub(crate) mod serde_bytes_compat {
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::ser::Serializer;
    use std::fmt;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}
