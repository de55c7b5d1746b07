//! The node's shuffle service, which serves map outputs to other nodes, and the client side that
//! fetches buckets from them.
//!
//! Buckets travel node to node over QUIC with mutual TLS (both sides hold certificates of the
//! cluster CA), and a bucket is served only to a fetch that presents the job's shuffle key, which
//! only the coordinator and the job's own tasks know. Each batch is its own frame: the server
//! reads a spilled bucket batch by batch on a blocking thread, the receiving task pulls batches
//! as it consumes them ([`RemoteBuckets`]), so a bucket of any size streams through without being
//! assembled in one piece on either side. Every fetch gives up at its task's deadline: as the
//! holder's fault (a fetch failure, so that what it holds is computed again elsewhere) when it
//! sent nothing for more than [`STALL_GRACE`], as the task's own deadline otherwise. A reply
//! that cannot be accepted (malformed, over the frame limit) fails the task with that cause. The
//! coordinator never sees shuffle data.

use crate::NodeState;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use weft_abi::task::{BucketPiece, LostOutput, ShuffleKey};
use weft_sandbox::{BatchSource, FetchBucket, InputError};
use weft_storage::shuffle_store::BucketReader;
use weft_wire::frame::{DEFAULT_MAX_FRAME, FrameError};
use weft_wire::pki::NODE_NAME;
use weft_wire::protocol::{PartsJoiner, Request, Response, batch_parts};
use weft_wire::transport::{self, ClientEndpoint, TransportError};

/// Serve `FetchBucket` requests from other nodes until the endpoint closes.
pub(crate) async fn serve(state: Arc<NodeState>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((tx, rx)) = conn.accept_bi().await {
                let state = state.clone();
                let conn = conn.clone();
                tokio::spawn(async move {
                    match serve_stream(&state, tx, rx).await {
                        Ok(()) => {}
                        Err(e @ (TransportError::Frame(_) | TransportError::Rejected(_))) => {
                            tracing::warn!(remote = %conn.remote_address(), error = %e, "closing shuffle connection");
                            conn.close(1u32.into(), b"protocol error");
                        }
                        // A fetch that broke or stalled spoils nothing else.
                        Err(e) => tracing::debug!(error = %e, "dropped a shuffle stream"),
                    }
                });
            }
        });
    }
}

async fn serve_stream(
    state: &NodeState,
    tx: quinn::SendStream,
    rx: quinn::RecvStream,
) -> Result<(), TransportError> {
    let Some((request, mut tx)) = transport::accept_request(tx, rx, DEFAULT_MAX_FRAME).await?
    else {
        return Ok(());
    };
    let Request::FetchBucket { map, bucket, key } = request else {
        let reason = "the shuffle service only serves buckets".to_string();
        return transport::respond(tx, &Response::Refused { reason }).await;
    };
    let reader = match state.shuffle.reader(&map, &key, bucket) {
        Ok(reader) => reader,
        Err(e) => {
            return transport::respond(tx, &Response::Refused { reason: e.to_string() }).await;
        }
    };
    let mut served = 0u64;
    let mut batches = Batches(Some(reader));
    while let Some(batch) = batches.next().await {
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a spilled map output");
                return transport::respond(tx, &Response::Refused { reason: e }).await;
            }
        };
        served += batch.len() as u64;
        for (part, end_of_batch) in batch_parts(&batch) {
            let part = Response::BucketPart { bytes: part.to_vec(), end_of_batch };
            transport::send(&mut tx, &part).await?;
        }
    }
    state.counters().shuffle_bytes_served += served;
    transport::respond(tx, &Response::EndOfBucket).await
}

/// The batches of a bucket, read off the async threads when they come from a spill file.
struct Batches(Option<BucketReader>);

impl Batches {
    async fn next(&mut self) -> Option<Result<Bytes, String>> {
        let mut reader = self.0.take()?;
        if !reader.is_on_disk() {
            let next = reader.next_batch().map_err(|e| e.to_string()).transpose();
            self.0 = Some(reader);
            return next;
        }
        let read = tokio::task::spawn_blocking(move || {
            let next = reader.next_batch();
            (reader, next)
        })
        .await;
        match read {
            Ok((reader, next)) => {
                self.0 = Some(reader);
                next.map_err(|e| e.to_string()).transpose()
            }
            Err(e) => Some(Err(e.to_string())),
        }
    }
}

/// A wait for the holder that ends at the task's deadline is the holder's fault only if it
/// lasted longer than this; a shorter one means the task had used up its time before asking.
pub(crate) const STALL_GRACE: Duration = Duration::from_secs(1);

/// What a failed wait for the holder of `lost` means, nothing having arrived since `quiet_since`.
fn wait_failed(
    e: TransportError,
    lost: &LostOutput,
    quiet_since: Instant,
    deadline: Instant,
) -> InputError {
    match e {
        // Data was flowing, or the wait had just begun: the task ran out of time.
        TransportError::Timeout(_) if quiet_since + STALL_GRACE > deadline => InputError::Deadline,
        // What the holder sent cannot be read as it is (a stream cut short is a fetch failure).
        TransportError::Frame(e @ (FrameError::Malformed(_) | FrameError::Oversized { .. })) => {
            InputError::Read(format!("node {}: {e}", lost.node))
        }
        e => InputError::Fetch {
            lost: Some(lost.clone()),
            message: format!("node {}: {e}", lost.node),
        },
    }
}

/// Fetches pieces of buckets from other nodes' shuffle services (and counts what it fetched).
pub(crate) struct RemoteFetch {
    pub(crate) state: std::sync::Weak<NodeState>,
    pub(crate) runtime: tokio::runtime::Handle,
}

impl FetchBucket for RemoteFetch {
    fn fetch(
        &self,
        piece: &BucketPiece,
        bucket: u32,
        key: &ShuffleKey,
        deadline: Instant,
    ) -> Result<Box<dyn BatchSource>, InputError> {
        let lost = piece.lost();
        let Some(state) = self.state.upgrade() else {
            return Err(InputError::Fetch {
                lost: Some(lost),
                message: "the node is stopping".into(),
            });
        };
        let request = Request::FetchBucket { map: piece.map.clone(), bucket, key: key.clone() };
        let started = Instant::now();
        let opened = self.runtime.block_on(async {
            let timeout = deadline.saturating_duration_since(Instant::now());
            let connect = state.peer_connection(&piece.shuffle_addr);
            let conn = tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| TransportError::Timeout(timeout))??;
            transport::open_request(&conn, &request, deadline).await
        });
        state.counters().shuffle_fetch_micros += started.elapsed().as_micros() as u64;
        let rx = opened.map_err(|e| wait_failed(e, &lost, started, deadline))?;
        Ok(Box::new(RemoteBuckets {
            state,
            runtime: self.runtime.clone(),
            lost,
            rx: Some(rx),
            deadline,
        }))
    }
}

/// One piece of a bucket, streamed from the node that holds it: a batch is pulled from the
/// network only when the task asks for input, and never after the task's deadline.
struct RemoteBuckets {
    state: Arc<NodeState>,
    runtime: tokio::runtime::Handle,
    lost: LostOutput,
    rx: Option<transport::FramedRecv>,
    deadline: Instant,
}

impl BatchSource for RemoteBuckets {
    fn next_batch(&mut self) -> Result<Option<Bytes>, InputError> {
        let mut joiner = PartsJoiner::default();
        loop {
            let Some(rx) = self.rx.as_mut() else { return Ok(None) };
            let started = Instant::now();
            let next = self.runtime.block_on(rx.expect_by::<Response>(self.deadline));
            let quiet_since = started.max(rx.last_progress());
            let mut counters = self.state.counters();
            counters.shuffle_fetch_micros += started.elapsed().as_micros() as u64;
            let node = &self.lost.node;
            let fail =
                |message: String| InputError::Fetch { lost: Some(self.lost.clone()), message };
            match next.map_err(|e| wait_failed(e, &self.lost, quiet_since, self.deadline))? {
                Response::BucketPart { bytes, end_of_batch } => {
                    counters.shuffle_bytes_fetched += bytes.len() as u64;
                    if let Some(batch) = joiner.push(bytes, end_of_batch) {
                        return Ok(Some(Bytes::from(batch)));
                    }
                }
                Response::EndOfBucket if joiner.is_empty() => {
                    self.rx = None;
                    return Ok(None);
                }
                Response::Refused { reason } => return Err(fail(format!("node {node}: {reason}"))),
                other => return Err(fail(format!("node {node}: unexpected {other:?}"))),
            }
        }
    }
}

/// Open a mutually authenticated connection to another node's shuffle service.
pub(crate) async fn connect(
    endpoint: &ClientEndpoint,
    addr: &str,
) -> Result<quinn::Connection, TransportError> {
    let addr: SocketAddr =
        addr.parse().map_err(|_| TransportError::Io(format!("bad shuffle address {addr:?}")))?;
    transport::connect_to(endpoint, addr, NODE_NAME).await
}
