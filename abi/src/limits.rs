//! Bounds on what a host accepts from a guest (and a node from a coordinator).
//!
//! Nothing a job's module sends is trusted to be small: a partition count is an allocation per
//! partition in the scheduler and per bucket on every node, a plan node is work for the planner.
//! Every host checks these bounds when it decodes a request and refuses it with a message that
//! names the bound, instead of trying and running out of memory.

/// Most partitions of one stage: shuffle buckets, inline partitions, file splits.
pub const MAX_PARTITIONS: u32 = 1 << 16;

/// Most map-output cells of one shuffle (map tasks × buckets): the coordinator keeps a size for
/// each.
pub const MAX_SHUFFLE_CELLS: u64 = 1 << 26;

/// Most nodes in one action's plan.
pub const MAX_PLAN_NODES: usize = 10_000;

/// Most stages one action may be cut into.
pub const MAX_STAGES: usize = 1000;

/// Most tasks of one action, all stages together.
pub const MAX_TASKS: u64 = 1 << 20;

/// Largest inline partition (`parallelize`): it travels inside every task that reads it, so it
/// must fit a frame with room to spare.
pub const MAX_INLINE_PARTITION_BYTES: usize = 32 << 20;

/// Longest operator label (a name and a source location).
pub const MAX_LABEL_BYTES: usize = 4 << 10;

/// Largest action request a driver may send (plan, inline records, shipped values).
pub const MAX_ACTION_REQUEST_BYTES: usize = 512 << 20;

/// Most arguments of a job, and their total size.
pub const MAX_JOB_ARGS: usize = 4096;

/// Total bytes of a job's arguments.
pub const MAX_JOB_ARGS_BYTES: usize = 1 << 20;

/// Largest broadcast value (encoded): it travels to a node as one message.
pub const MAX_BROADCAST_BYTES: usize = 48 << 20;

/// Most broadcast values of one job.
pub const MAX_BROADCASTS: usize = 1024;
