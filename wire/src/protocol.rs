//! The messages of the Weft cluster protocol and the version handshake.
//!
//! Every stream opens with a [`Hello`] from the side that opened it, answered by a
//! [`HelloReply`]; a peer speaking another protocol version is told so and the stream closes.
//! Then comes one [`Request`] and its [`Response`] (or a series of them).
//!
//! A connection is authenticated once, into a principal: by its client certificate (a node),
//! or by an `Authenticate` exchange with a token (a client). Until then only `Authenticate` and
//! `Join` are answered, and no frame longer than [`MAX_ANONYMOUS_FRAME`] is read. Who may send
//! what:
//!
//! | request | sent by | authenticated by |
//! |---|---|---|
//! | `Authenticate` | a client, first | the token's secret |
//! | `Join` | a node without a certificate yet | the join token's secret |
//! | `Register`, `Heartbeat`, `FetchModule`, `FetchBroadcast` | a node | its client certificate (mutual TLS) |
//! | `ClusterStatus`, `HasModule`, `UploadModule`, `Submit`, `Follow`, `Jobs`, `JobStatus`, `Cancel` | a client | its connection's `Authenticate` |
//! | `RunTask`, `ReleaseShuffle` | the coordinator, to a node (on the node's connection) | the node's trust in the CA |
//! | `FetchBucket` | a node, to another node's shuffle service | both certificates, and the job's shuffle key |

use serde::{Deserialize, Serialize};
use weft_abi::task::{MapOutput, MapOutputId, ShuffleKey, TaskFailure, TaskSpec};

/// Version of this protocol; peers must match exactly.
pub const PROTOCOL_VERSION: u32 = 5;

/// Largest frame read from a connection that has not authenticated: enough for a hello, a
/// token and a certificate signing request, nothing a stranger could use to make us allocate.
pub const MAX_ANONYMOUS_FRAME: usize = 16 << 10;
/// Marks a Weft peer (and not, say, a stray client of another QUIC service).
pub const MAGIC: &str = "weft";

/// The first frame of every stream.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: String,
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u32,
}

impl Hello {
    /// Our hello.
    pub fn ours() -> Hello {
        Hello { magic: MAGIC.to_string(), version: PROTOCOL_VERSION }
    }
}

/// The answer to a [`Hello`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum HelloReply {
    /// Go ahead.
    Welcome {
        /// The version both sides speak.
        version: u32,
    },
    /// Incompatible peer; the stream is closed after this.
    Rejected {
        /// Why, for the peer's log.
        reason: String,
    },
}

/// Decide the reply to a peer's hello (the whole handshake; no I/O involved).
pub fn answer_hello(hello: &Hello) -> HelloReply {
    if hello.magic != MAGIC {
        return HelloReply::Rejected {
            reason: format!("not a Weft peer (magic {:?})", hello.magic),
        };
    }
    if hello.version != PROTOCOL_VERSION {
        return HelloReply::Rejected {
            reason: format!(
                "protocol version {} is not supported; this side speaks version {PROTOCOL_VERSION} \
                 (run the same Weft release on every machine)",
                hello.version
            ),
        };
    }
    HelloReply::Welcome { version: PROTOCOL_VERSION }
}

/// A request, to the coordinator or (`RunTask`, `ReleaseShuffle`, `FetchBucket`) to a node.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Request {
    /// Prove knowledge of a token; the connection then acts as its holder. (Anonymous.)
    Authenticate {
        /// The secret part of the token.
        token_secret: String,
    },
    /// Ask to join: prove knowledge of the join token, get the CSR signed. (Anonymous.)
    Join {
        /// The secret part of the join token.
        token_secret: String,
        /// The node's chosen name (for humans and logs).
        name: String,
        /// A PEM certificate signing request for the node's own key pair.
        csr_pem: String,
    },
    /// Announce capacity on a mutually authenticated connection.
    Register {
        /// Task slots.
        slots: u32,
        /// Where the node serves shuffle data to other nodes.
        shuffle_addr: String,
    },
    /// Still alive.
    Heartbeat {
        /// Tasks running now.
        running: u32,
        /// The node's counters.
        counters: Counters,
    },
    /// Nodes and their state.
    ClusterStatus,
    /// Does the coordinator already have this module?
    HasModule {
        /// SHA-256 of the module, hex.
        hash: String,
    },
    /// Store a module under its hash (checked).
    UploadModule {
        /// SHA-256 of the module, hex.
        hash: String,
        /// The module.
        #[serde(with = "serde_bytes")]
        wasm: Vec<u8>,
    },
    /// Start a job from a stored module.
    Submit {
        /// The module: its hash, or a name `TENANT/NAME[@VERSION]` of the registry.
        hash: String,
        /// Arguments for the job's `main`.
        args: Vec<String>,
        /// Memory a task may use, MiB (default: the tenant's cap, else the coordinator's).
        #[serde(default)]
        memory_limit_mib: Option<u64>,
        /// How long a task may run, seconds (default: as memory).
        #[serde(default)]
        task_timeout_secs: Option<u64>,
    },
    /// Stream a job's events from its start until it ends.
    Follow {
        /// The job.
        job_id: String,
    },
    /// All jobs.
    Jobs,
    /// One job.
    JobStatus {
        /// The job.
        job_id: String,
    },
    /// Stop a job.
    Cancel {
        /// The job.
        job_id: String,
    },
    /// Add a tenant (admin). Answered by `TenantToken`.
    CreateTenant {
        /// Its name.
        name: String,
        /// Its caps and share.
        limits: crate::tenancy::TenantLimits,
        /// Its data root (default: a directory of its name in the data directory).
        data_dir: Option<String>,
    },
    /// Every tenant (admin). Answered by `Tenants`.
    ListTenants,
    /// Change a tenant (admin). Answered by `Tenants` with it.
    UpdateTenant {
        /// The tenant.
        name: String,
        /// What changes.
        change: crate::tenancy::TenantChange,
    },
    /// Remove a tenant (admin). Answered by `Tenants` with it.
    DeleteTenant {
        /// The tenant.
        name: String,
    },
    /// A new token for a tenant; the old one stops working (admin). Answered by `TenantToken`.
    RotateTenantToken {
        /// The tenant.
        name: String,
    },
    /// Name a stored module (`TENANT/NAME`, or `NAME` in the tenant's own namespace): a new
    /// version, and `latest`. Answered by `ModulePushed`.
    PushModule {
        /// The name.
        name: String,
        /// The stored module's hash.
        hash: String,
        /// Whether every tenant may use it.
        public: bool,
    },
    /// The named modules the principal may use. Answered by `Modules`.
    ListModules,
    /// One named module with its versions and exports. Answered by `Modules`.
    ShowModule {
        /// `TENANT/NAME` or `NAME`.
        name: String,
    },
    /// Remove a named module, or one version (`NAME@VERSION`). Answered by `Modules` with what
    /// was removed.
    DeleteModule {
        /// `TENANT/NAME[@VERSION]` or `NAME[@VERSION]`.
        name: String,
    },
    /// A node asks for a module's bytes.
    FetchModule {
        /// The module's hash.
        hash: String,
    },
    /// The coordinator asks a node to run a task. Answered by `TaskDone` and its result parts,
    /// or by `TaskFailed`.
    RunTask(Box<TaskSpec>),
    /// A node asks for a broadcast value of a job it runs tasks of. Answered by `Broadcast`.
    FetchBroadcast {
        /// The job.
        job: String,
        /// The value's SHA-256 (hex).
        hash: String,
    },
    /// The coordinator tells a node that an action ended: its map outputs can go.
    ReleaseShuffle {
        /// The job.
        job: String,
        /// The action.
        action: u32,
        /// Only this stage's outputs (a cached dataset's blocks), else all of the action's.
        #[serde(default)]
        stage: Option<u32>,
    },
    /// A node asks another for one bucket of one map output. Answered by `BucketPart`s and
    /// `EndOfBucket`, or `Refused`.
    FetchBucket {
        /// The map output.
        map: MapOutputId,
        /// The bucket.
        bucket: u32,
        /// The job's shuffle key, which the output was stored with.
        key: ShuffleKey,
    },
}

impl Request {
    /// Whether a connection that has not authenticated may send this.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Request::Authenticate { .. } | Request::Join { .. })
    }
}

/// One event of a job, as followers see it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// Bytes the driver wrote to stdout.
    Stdout(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Bytes the driver (or a task, prefixed) wrote to stderr.
    Stderr(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Progress of the job's current action (a stage completed).
    Progress(String),
    /// The job ended.
    Finished {
        /// The driver's exit code (0: success).
        exit_code: i32,
        /// Why it failed, if it did.
        error: Option<String>,
    },
}

/// A job as listed by `weft jobs` / `weft status JOB`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct JobInfo {
    /// Identifier.
    pub id: String,
    /// The tenant it runs for (`admin` for jobs submitted with the admin token).
    pub tenant: String,
    /// The module's hash.
    pub module_hash: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Why it waits (`queued` jobs).
    pub waiting: Option<String>,
    /// Seconds since it was submitted.
    pub age_secs: u64,
    /// Seconds it ran (so far, if it still runs), from its driver's start.
    pub run_secs: u64,
    /// Milliseconds from its submission to its driver's start (after any queueing).
    #[serde(default)]
    pub started_after_ms: Option<u64>,
    /// Milliseconds from its submission to the launch of its first task.
    #[serde(default)]
    pub first_task_after_ms: Option<u64>,
    /// Stages completed.
    #[serde(default)]
    pub stages: u64,
    /// Tasks completed.
    #[serde(default)]
    pub tasks: u64,
}

/// Counters a process exposes (asserted by tests, shown by `weft status`).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Module bytes sent to nodes (coordinator) or received (node).
    pub module_bytes_sent: u64,
    /// Modules compiled.
    pub compilations: u64,
    /// Shuffle bytes served to other nodes.
    pub shuffle_bytes_served: u64,
    /// Shuffle bytes fetched from other nodes.
    pub shuffle_bytes_fetched: u64,
    /// Time spent fetching them, in microseconds.
    pub shuffle_fetch_micros: u64,
    /// Shuffle bytes that passed through the coordinator (always 0 by design).
    pub shuffle_bytes_relayed: u64,
    /// Tasks run.
    pub tasks: u64,
    /// Broadcast bytes sent to nodes (coordinator) or fetched from it (node).
    #[serde(default)]
    pub broadcast_bytes: u64,
    /// Broadcast values sent (coordinator) or fetched (node).
    #[serde(default)]
    pub broadcasts_fetched: u64,
    /// Bytes of the task descriptions a node was sent (their plans, inputs and references).
    #[serde(default)]
    pub task_spec_bytes: u64,
    /// Map outputs held right now, in memory or spilled (released when their action ends).
    pub map_outputs_held: u64,
    /// Map output bytes written to disk because the memory bound was reached.
    pub shuffle_bytes_spilled: u64,
    /// Tasks running now.
    pub running_tasks: u64,
    /// The most tasks that ever ran at once.
    pub peak_running_tasks: u64,
    /// Tasks refused because every slot was busy.
    pub tasks_refused: u64,
    /// UDF module bytes a node fetched (a module used as a job's too is counted once, there).
    #[serde(default)]
    pub udf_module_bytes: u64,
    /// UDF modules a node loaded (compiled, or mapped from its compiled-module cache).
    #[serde(default)]
    pub udf_compilations: u64,
}

/// The answer to a request.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Response {
    /// The token was accepted; the connection now acts as its holder.
    Authenticated {
        /// Who that is (`admin`).
        principal: String,
    },
    /// The join was accepted.
    Joined {
        /// Identifier the coordinator gave the node.
        node_id: String,
        /// The node's certificate, signed by the cluster CA (PEM).
        cert_pem: String,
        /// The cluster CA certificate (PEM).
        ca_pem: String,
    },
    /// Registration accepted.
    Registered {
        /// The node's identifier.
        node_id: String,
    },
    /// Done (heartbeat noted, outputs released).
    Ack,
    /// The cluster's nodes and the coordinator's counters (module bytes sent to nodes, shuffle
    /// bytes relayed).
    ClusterStatus {
        /// The nodes the coordinator knows, alive or recently lost.
        nodes: Vec<NodeInfo>,
        /// The coordinator's counters.
        counters: Counters,
    },
    /// Whether a module is stored.
    ModuleStatus {
        /// Stored or not.
        present: bool,
    },
    /// A module was stored.
    ModuleStored,
    /// A job started.
    Submitted {
        /// Its identifier.
        job_id: String,
    },
    /// One event of a followed job (many per stream).
    Event(JobEvent),
    /// Jobs.
    Jobs(Vec<JobInfo>),
    /// Tenants.
    Tenants(Vec<crate::tenancy::TenantInfo>),
    /// Named modules.
    Modules(Vec<crate::registry::ModuleInfo>),
    /// A module was named.
    ModulePushed {
        /// `TENANT/NAME@VERSION`.
        version: String,
    },
    /// A tenant's new token: shown this once.
    TenantToken {
        /// The tenant.
        name: String,
        /// Its token.
        token: String,
    },
    /// A module's bytes.
    Module(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A broadcast value's bytes.
    Broadcast(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A task succeeded; `batches` batches of results follow as [`Response::ResultPart`]s.
    TaskDone {
        /// Where its map output is kept.
        map_output: Option<MapOutput>,
        /// Rows skipped by a lenient CSV source, with the first error.
        bad_rows: Option<(u64, String)>,
        /// What the task added to accumulators.
        accumulators: Vec<weft_abi::guest::AccumulatorUpdate>,
        /// Captured stdout.
        stdout: serde_bytes::ByteBuf,
        /// Captured stderr.
        stderr: serde_bytes::ByteBuf,
        /// Result batches that follow.
        batches: u32,
    },
    /// A piece of a result batch: batches travel as a stream of parts, so that no reply is
    /// ever one frame over the limit, however large the results.
    ResultPart {
        /// The bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        /// This part ends its batch.
        end_of_batch: bool,
    },
    /// A task failed.
    TaskFailed(TaskFailure),
    /// A piece of a batch of a shuffle bucket (many per stream, then `EndOfBucket`): batches
    /// travel in parts, so that no batch is ever one frame over the limit.
    BucketPart {
        /// The bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        /// This part ends its batch.
        end_of_batch: bool,
    },
    /// The bucket is complete.
    EndOfBucket,
    /// The request was refused.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A node as the coordinator sees it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// Identifier.
    pub id: String,
    /// The name the node chose.
    pub name: String,
    /// Task slots.
    pub slots: u32,
    /// Slots the coordinator's tasks use on it now.
    pub slots_used: u32,
    /// Shuffle service address.
    pub shuffle_addr: String,
    /// Whether it heartbeated recently.
    pub alive: bool,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms: u64,
    /// The node's counters, as of its last heartbeat.
    pub counters: Counters,
}

/// Largest piece of a batch in one frame: result and bucket batches of any size travel as a
/// series of parts ([`Response::ResultPart`], [`Response::BucketPart`]).
pub const BATCH_PART: usize = 8 << 20;

/// `batch` cut into parts of at most [`BATCH_PART`] bytes, each with whether it ends the batch
/// (an empty batch is one empty part).
pub fn batch_parts(batch: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let parts = batch.len().div_ceil(BATCH_PART).max(1);
    (0..parts).map(move |i| {
        let end = ((i + 1) * BATCH_PART).min(batch.len());
        (&batch[i * BATCH_PART..end], i + 1 == parts)
    })
}

/// Puts batches back together from their parts.
#[derive(Debug, Default)]
pub struct PartsJoiner {
    current: Vec<u8>,
}

impl PartsJoiner {
    /// Add a part; the whole batch once its last part is in.
    pub fn push(&mut self, bytes: Vec<u8>, end_of_batch: bool) -> Option<Vec<u8>> {
        if self.current.is_empty() {
            self.current = bytes;
        } else {
            self.current.extend_from_slice(&bytes);
        }
        end_of_batch.then(|| std::mem::take(&mut self.current))
    }

    /// Whether no part of an unfinished batch is held.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_of_any_size_go_through_parts_and_come_back_whole() {
        for len in [0, 1, BATCH_PART - 1, BATCH_PART, 2 * BATCH_PART + 5] {
            let batch: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let parts: Vec<(&[u8], bool)> = batch_parts(&batch).collect();
            assert_eq!(parts.len(), len.div_ceil(BATCH_PART).max(1), "{len}");
            assert!(parts.iter().all(|(p, _)| p.len() <= BATCH_PART));
            let mut joiner = PartsJoiner::default();
            let mut whole = None;
            for (part, end) in parts {
                assert!(whole.is_none(), "a batch came back before its last part");
                whole = joiner.push(part.to_vec(), end);
            }
            assert_eq!(whole.as_deref(), Some(&batch[..]), "{len}");
            assert!(joiner.is_empty());
        }
    }

    #[test]
    fn the_handshake_accepts_only_our_magic_and_version() {
        assert_eq!(answer_hello(&Hello::ours()), HelloReply::Welcome { version: PROTOCOL_VERSION });
        let old = Hello { magic: MAGIC.into(), version: PROTOCOL_VERSION + 1 };
        assert!(
            matches!(answer_hello(&old), HelloReply::Rejected { reason } if reason.contains("not supported"))
        );
        let alien = Hello { magic: "http".into(), version: PROTOCOL_VERSION };
        assert!(
            matches!(answer_hello(&alien), HelloReply::Rejected { reason } if reason.contains("not a Weft peer"))
        );
    }
}
