//! Running a [`TaskSpec`]: its inputs opened from the job's storage and the shuffle store, its
//! output kept where the spec says. The embedded engine and the node daemon both run tasks
//! through [`run_spec`]; they differ only in how a shuffle piece held by another machine is
//! fetched ([`FetchBucket`], which the embedded engine does not have).

use crate::engine::SandboxPolicy;
use crate::error::TaskError;
use crate::io::{BatchSource, InputError, OutputSpec, TaskOutput, VecSource};
use crate::module::JobModule;
use crate::task::TaskReport;
use crate::udf_host::BoundUdf;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_abi::task::{
    BucketPiece, LostOutput, MapOutput, ShuffleKey, ShuffleRead, TaskInput,
    TaskOutput as OutputKind, TaskSpec,
};
use weft_storage::Storage;
use weft_storage::input::SplitReader;
use weft_storage::shuffle_store::{BucketReader, ShuffleStore};

/// Fetches one map output's piece of a bucket from the machine that holds it.
pub trait FetchBucket: Send + Sync {
    /// Start reading `piece` (of bucket `bucket`, under `key`); the source must give up by
    /// `deadline`.
    fn fetch(
        &self,
        piece: &BucketPiece,
        bucket: u32,
        key: &ShuffleKey,
        deadline: Instant,
    ) -> Result<Box<dyn BatchSource>, InputError>;
}

/// Where a task runs: the machine's view of storage and shuffle data.
pub struct TaskHost {
    /// The job's storage.
    pub storage: Arc<dyn Storage>,
    /// This machine's map outputs.
    pub shuffle: Arc<ShuffleStore>,
    /// This machine's id in map outputs it reports.
    pub node_id: String,
    /// Where this machine serves shuffle data (empty when it serves none).
    pub shuffle_addr: String,
    /// How pieces held elsewhere are fetched (`None`: everything is here).
    pub remote: Option<Arc<dyn FetchBucket>>,
    /// The broadcast values this machine holds.
    pub broadcasts: Arc<dyn BroadcastBlobs>,
}

/// Where a task's broadcast values are found on this machine (fetched, if need be, before the
/// task starts).
pub trait BroadcastBlobs: Send + Sync {
    /// The bytes of the value `r` names, if they are here.
    fn blob(&self, r: &weft_abi::task::BroadcastRef) -> Option<Bytes>;
}

/// What a task produced, ready to be reported.
#[derive(Debug)]
pub struct SpecOutcome {
    /// The sandbox's report (output, skipped rows, captured output).
    pub report: TaskReport,
    /// Where its map output is, for a map task.
    pub map_output: Option<MapOutput>,
}

/// Run `spec` with `module` on `host` (blocking: the task runs on this thread); `udfs` are the
/// compiled modules of `spec.udfs`.
pub fn run_spec(
    module: &JobModule,
    spec: &TaskSpec,
    host: &TaskHost,
    udfs: Vec<BoundUdf>,
) -> Result<SpecOutcome, TaskError> {
    let limits = spec.limits;
    let timeout = Duration::from_millis(limits.timeout_ms);
    let deadline = Instant::now() + timeout;
    let inputs = spec
        .inputs
        .iter()
        .map(|input| open_input(input, host, deadline))
        .collect::<Result<Vec<_>, _>>()?;
    let output = match &spec.output {
        OutputKind::Driver => OutputSpec::Batches { limit: limits.result_bytes },
        OutputKind::Buckets { buckets, id, key } => {
            if *buckets == 0 || *buckets > weft_abi::limits::MAX_PARTITIONS {
                return Err(TaskError::Setup(format!("a map task cannot write {buckets} buckets")));
            }
            OutputSpec::Buckets(host.shuffle.writer(id.clone(), key.clone(), *buckets))
        }
        OutputKind::Part(target) => OutputSpec::Part(
            host.storage.part_writer(target).map_err(|e| TaskError::Output(e.to_string()))?,
        ),
    };
    let policy = SandboxPolicy {
        task_timeout: timeout,
        driver_timeout: timeout,
        memory_limit: limits.memory_bytes,
        ..module.policy().clone()
    };
    let mut broadcasts = std::collections::HashMap::with_capacity(spec.broadcasts.len());
    for r in &spec.broadcasts {
        let bytes = host.broadcasts.blob(r).ok_or_else(|| {
            TaskError::Setup(format!("broadcast {} is not on this machine", r.id))
        })?;
        broadcasts.insert(r.id, bytes);
    }
    let module = module.clone().with_policy(policy);
    let report = module.run_task(&spec.guest, inputs, output, broadcasts, udfs)?;
    let map_output = match (&report.output, &spec.output) {
        (TaskOutput::Buckets(receipt), OutputKind::Buckets { id, .. }) => Some(MapOutput {
            id: id.clone(),
            node_id: host.node_id.clone(),
            shuffle_addr: host.shuffle_addr.clone(),
            bucket_bytes: receipt.bucket_bytes.clone(),
        }),
        _ => None,
    };
    Ok(SpecOutcome { report, map_output })
}

fn open_input(
    input: &TaskInput,
    host: &TaskHost,
    deadline: Instant,
) -> Result<Box<dyn BatchSource>, TaskError> {
    Ok(match input {
        TaskInput::Empty => Box::new(VecSource::new([])),
        TaskInput::Inline(batch) => Box::new(VecSource::new([Bytes::from(batch.0.clone())])),
        TaskInput::Split(split) => {
            Box::new(SplitReader::new(host.storage.clone(), vec![split.clone()]))
        }
        TaskInput::Shuffle(read) => Box::new(ShuffleInput {
            shuffle: host.shuffle.clone(),
            node_id: host.node_id.clone(),
            remote: host.remote.clone(),
            bucket: read.bucket,
            key: read.key.clone(),
            pieces: pieces_to_read(read),
            current: None,
            deadline,
        }),
    })
}

/// The pieces worth opening: empty ones are skipped without a fetch.
fn pieces_to_read(read: &ShuffleRead) -> VecDeque<BucketPiece> {
    read.pieces.iter().filter(|p| p.bytes > 0).cloned().collect()
}

/// A reduce task's input: one bucket of every map output, streamed piece after piece, each
/// piece read from this machine's shuffle store or fetched from the one that holds it. A piece
/// that cannot be had fails the task with a fetch error naming the map output, so that it is
/// computed again; it is never skipped.
struct ShuffleInput {
    shuffle: Arc<ShuffleStore>,
    node_id: String,
    remote: Option<Arc<dyn FetchBucket>>,
    bucket: u32,
    key: ShuffleKey,
    pieces: VecDeque<BucketPiece>,
    current: Option<Box<dyn BatchSource>>,
    deadline: Instant,
}

impl ShuffleInput {
    fn open_piece(&self, piece: &BucketPiece) -> Result<Box<dyn BatchSource>, InputError> {
        if piece.node_id == self.node_id {
            let reader = self.shuffle.reader(&piece.map, &self.key, self.bucket).map_err(|e| {
                InputError::Fetch { lost: Some(piece.lost()), message: e.to_string() }
            })?;
            return Ok(Box::new(StoreSource { reader, lost: piece.lost() }));
        }
        match &self.remote {
            Some(remote) => remote.fetch(piece, self.bucket, &self.key, self.deadline),
            None => Err(InputError::Fetch {
                lost: Some(piece.lost()),
                message: format!(
                    "map output held by {}, which this engine cannot reach",
                    piece.node_id
                ),
            }),
        }
    }
}

impl BatchSource for ShuffleInput {
    fn next_batch(&mut self) -> Result<Option<Bytes>, InputError> {
        loop {
            if let Some(source) = self.current.as_mut() {
                match source.next_batch()? {
                    Some(batch) => return Ok(Some(batch)),
                    None => self.current = None,
                }
            }
            let Some(piece) = self.pieces.pop_front() else { return Ok(None) };
            self.current = Some(self.open_piece(&piece)?);
        }
    }
}

/// Batches of a [`BucketReader`] of this machine's shuffle store as a task input.
struct StoreSource {
    reader: BucketReader,
    lost: LostOutput,
}

impl BatchSource for StoreSource {
    fn next_batch(&mut self) -> Result<Option<Bytes>, InputError> {
        self.reader.next_batch().map_err(|e| InputError::Fetch {
            lost: Some(self.lost.clone()),
            message: e.to_string(),
        })
    }
}
