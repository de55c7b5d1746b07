//! The messages of the Weft cluster protocol and the version handshake.
//!
//! Every stream opens with a [`Hello`] from the side that opened it, answered by a
//! [`HelloReply`]; a peer speaking another protocol version is told so and the stream closes.
//! Then comes one [`Request`] and its [`Response`]. Who may send what:
//!
//! | request | sent by | authenticated by |
//! |---|---|---|
//! | `Join` | a node without a certificate yet | the join token's secret |
//! | `Register`, `Heartbeat` | a node | its client certificate (mutual TLS) |
//! | `ClusterStatus`, `HasModule`, `UploadModule`, `Submit`, `Follow`, `Jobs`, `JobStatus`, `Cancel` | a client | the admin token's secret |
//! | `FetchModule` | a node, to the coordinator | its client certificate |
//! | `RunTask` | the coordinator, to a node (on the node's connection) | the node's trust in the CA |
//! | `FetchBucket` | a node, to another node's shuffle service | both certificates (mutual TLS) |

use serde::{Deserialize, Serialize};

/// Version of this protocol; peers must match exactly.
pub const PROTOCOL_VERSION: u32 = 2;
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

/// A request to the coordinator.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Request {
    /// Ask to join: prove knowledge of the join token, get the CSR signed.
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
    /// Nodes and their state (admin).
    ClusterStatus {
        /// The secret part of the admin token.
        token_secret: String,
    },
    /// Does the coordinator already have this module?
    HasModule {
        /// The secret part of the admin token.
        token_secret: String,
        /// SHA-256 of the module, hex.
        hash: String,
    },
    /// Store a module under its hash (checked).
    UploadModule {
        /// The secret part of the admin token.
        token_secret: String,
        /// SHA-256 of the module, hex.
        hash: String,
        /// The module.
        #[serde(with = "serde_bytes")]
        wasm: Vec<u8>,
    },
    /// Start a job from a stored module.
    Submit {
        /// The secret part of the admin token.
        token_secret: String,
        /// The module's hash.
        hash: String,
        /// Arguments for the job's `main`.
        args: Vec<String>,
    },
    /// Stream a job's events from its start until it ends.
    Follow {
        /// The secret part of the admin token.
        token_secret: String,
        /// The job.
        job_id: String,
    },
    /// All jobs.
    Jobs {
        /// The secret part of the admin token.
        token_secret: String,
    },
    /// One job.
    JobStatus {
        /// The secret part of the admin token.
        token_secret: String,
        /// The job.
        job_id: String,
    },
    /// Stop a job.
    Cancel {
        /// The secret part of the admin token.
        token_secret: String,
        /// The job.
        job_id: String,
    },
    /// A node asks for a module's bytes.
    FetchModule {
        /// The module's hash.
        hash: String,
    },
    /// The coordinator asks a node to run a task.
    RunTask(Box<TaskAssignment>),
    /// The coordinator tells a node that an action ended: its map outputs can go.
    ReleaseShuffle {
        /// The job.
        job: String,
        /// The action.
        action: u32,
    },
    /// A node asks another for one bucket of one map output.
    FetchBucket {
        /// The map output.
        key: MapKey,
        /// The bucket.
        bucket: u32,
    },
}

/// Identifies one map task's output on the node that holds it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapKey {
    /// The job.
    pub job: String,
    /// The action within the job (0 for the first).
    pub action: u32,
    /// The stage within the action.
    pub stage: u32,
    /// The map partition.
    pub partition: u32,
}

/// Where a map output lives.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MapLocation {
    /// The node that ran the map task.
    pub node_id: String,
    /// Its shuffle service.
    pub shuffle_addr: String,
    /// The output's key there.
    pub key: MapKey,
    /// Bytes per bucket.
    pub bucket_bytes: Vec<u64>,
}

/// A plain-text or CSV file piece, by its path relative to the data directory.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RemoteSplit {
    /// Path relative to the data directory.
    pub path: String,
    /// First byte.
    pub start: u64,
    /// End (exclusive), or to the end of the file.
    pub end: Option<u64>,
    /// Gzip-compressed.
    pub gzip: bool,
    /// CSV (record-aligned chunks, exact boundaries) rather than text.
    pub csv: bool,
    /// Line number at `start`, or 0 when unknown.
    pub first_line: u64,
    /// CSV splits past the start: length of the file's header record, sent ahead of the split.
    pub header_len: u64,
}

/// What a remote task reads.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum RemoteInput {
    /// Nothing (an empty partition).
    Empty,
    /// An inline batch.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A file split.
    Split(RemoteSplit),
    /// One bucket of each of these map outputs.
    Shuffle {
        /// The bucket.
        bucket: u32,
        /// The map outputs.
        maps: Vec<MapLocation>,
    },
}

/// What a remote task writes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum RemoteOutput {
    /// Batches returned to the coordinator for the driver.
    Driver,
    /// Shuffle buckets kept on the node under `key`.
    Buckets {
        /// How many.
        buckets: u32,
        /// Under which key.
        key: MapKey,
    },
    /// A text part; paths relative to the data directory.
    TextPart {
        /// Written while the task runs.
        tmp: String,
        /// Final name.
        part: String,
    },
}

/// A task for a node.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TaskAssignment {
    /// The job.
    pub job: String,
    /// The module's hash.
    pub module_hash: String,
    /// Task timeout, memory limit: the job's sandbox policy.
    pub task_timeout_ms: u64,
    /// Memory limit in bytes.
    pub memory_limit: u64,
    /// The guest task, MessagePack-encoded `weft::abi::GuestTask`.
    #[serde(with = "serde_bytes")]
    pub guest: Vec<u8>,
    /// Input.
    pub input: RemoteInput,
    /// Output.
    pub output: RemoteOutput,
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
    /// The module's hash.
    pub module_hash: String,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Seconds since it started.
    pub age_secs: u64,
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
    /// Map outputs held right now, in memory or spilled (released when their action ends).
    pub map_outputs_held: u64,
    /// Map output bytes written to disk because the memory bound was reached.
    pub shuffle_bytes_spilled: u64,
}

/// The coordinator's answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Response {
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
    /// Heartbeat noted (also: done, for requests that need no answer but an acknowledgement).
    HeartbeatAck,
    /// The cluster's nodes and the coordinator's counters (module bytes sent to nodes, shuffle
    /// bytes relayed).
    ClusterStatus {
        /// One entry per node that ever registered since the coordinator started.
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
    /// A module's bytes.
    Module(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A task succeeded.
    TaskDone {
        /// Batches for the driver.
        batches: Vec<serde_bytes::ByteBuf>,
        /// Where its map output is kept.
        map_output: Option<MapLocation>,
        /// Rows skipped by a lenient CSV source, with the first error.
        bad_rows: Option<(u64, String)>,
        /// Captured stdout and stderr.
        stdout: serde_bytes::ByteBuf,
        /// Captured stderr.
        stderr: serde_bytes::ByteBuf,
    },
    /// A task failed.
    TaskFailed {
        /// Why.
        message: String,
        /// Whether another attempt could succeed.
        retryable: bool,
    },
    /// A batch of a shuffle bucket (many per stream, then `EndOfBucket`).
    BucketBatch(#[serde(with = "serde_bytes")] Vec<u8>),
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
    /// Shuffle service address.
    pub shuffle_addr: String,
    /// Whether it heartbeated recently.
    pub alive: bool,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms: u64,
    /// The node's counters, as of its last heartbeat.
    pub counters: Counters,
}

#[cfg(test)]
mod tests {
    use super::*;

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
