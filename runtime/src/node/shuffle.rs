//! The node's shuffle service: map outputs kept in memory and served to other nodes, and the
//! client side that fetches buckets from them.
//!
//! Buckets travel node to node over QUIC with mutual TLS (both sides hold certificates of the
//! cluster CA); each batch is its own frame, and the receiving task pulls batches as it consumes
//! them ([`RemoteBuckets`]), so a bucket of any size streams through without being assembled in
//! one piece on either side. The coordinator never sees shuffle data.

use super::NodeState;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use weft_wire::pki::NODE_NAME;
use weft_wire::protocol::{MapLocation, Request, Response};
use weft_wire::transport::{self, TransportError};

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
                    if let Err(e) = serve_stream(&state, tx, rx).await {
                        tracing::warn!(remote = %conn.remote_address(), error = %e, "closing shuffle connection");
                        conn.close(1u32.into(), b"protocol error");
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
    let Some((request, mut tx)) = transport::accept_request(tx, rx).await? else {
        return Ok(());
    };
    let Request::FetchBucket { key, bucket } = request else {
        return transport::respond(
            tx,
            &Response::Refused { reason: "the shuffle service only serves buckets".into() },
        )
        .await;
    };
    let buckets = match state.shuffle.bucket(&key, bucket) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a spilled map output");
            None
        }
    };
    let Some(batches) = buckets else {
        return transport::respond(
            tx,
            &Response::Refused { reason: format!("no map output {key:?} here") },
        )
        .await;
    };
    let mut served = 0u64;
    for batch in &batches {
        served += batch.len() as u64;
        transport::send(&mut tx, &Response::BucketBatch(batch.to_vec())).await?;
    }
    state.counters.lock().unwrap_or_else(|p| p.into_inner()).shuffle_bytes_served += served;
    transport::respond(tx, &Response::EndOfBucket).await
}

/// Bucket `bucket` of every map output of a reduce task, streamed: batches are pulled from the
/// nodes holding them (or this node's store) one at a time, as the task asks for input, so a
/// bucket of any size never sits whole in the task's input queue. Runs on the task's blocking
/// thread and drives the network with the node's async runtime.
pub(crate) struct RemoteBuckets {
    state: Arc<NodeState>,
    runtime: tokio::runtime::Handle,
    bucket: u32,
    maps: std::collections::VecDeque<MapLocation>,
    local: std::collections::VecDeque<Bytes>,
    remote: Option<(String, transport::FramedRecv)>,
}

impl RemoteBuckets {
    pub(crate) fn new(state: Arc<NodeState>, maps: Vec<MapLocation>, bucket: u32) -> Self {
        RemoteBuckets {
            state,
            runtime: tokio::runtime::Handle::current(),
            bucket,
            maps: maps.into(),
            local: Default::default(),
            remote: None,
        }
    }

    /// Start reading the next map output; false when there is none left.
    fn open_next(&mut self) -> Result<bool, String> {
        let Some(map) = self.maps.pop_front() else { return Ok(false) };
        if map.node_id == self.state.node_id() {
            let local = self
                .state
                .shuffle
                .bucket(&map.key, self.bucket)?
                .ok_or_else(|| format!("map output {:?} is missing here", map.key))?;
            self.local.extend(local);
            return Ok(true);
        }
        let state = self.state.clone();
        let request = Request::FetchBucket { key: map.key.clone(), bucket: self.bucket };
        let started = std::time::Instant::now();
        let rx = self.runtime.block_on(async {
            let conn = state.peer_connection(&map.shuffle_addr).await?;
            transport::open_request(&conn, &request).await
        });
        self.state.counters.lock().unwrap_or_else(|p| p.into_inner()).shuffle_fetch_micros +=
            started.elapsed().as_micros() as u64;
        let rx = rx.map_err(|e| format!("node {}: {e}", map.node_id))?;
        self.remote = Some((map.node_id, rx));
        Ok(true)
    }
}

impl crate::task::BatchSource for RemoteBuckets {
    fn next_batch(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            if let Some(batch) = self.local.pop_front() {
                return Ok(Some(batch));
            }
            if let Some((node, rx)) = self.remote.as_mut() {
                let started = std::time::Instant::now();
                let next = self.runtime.block_on(rx.expect::<Response>());
                let mut counters = self.state.counters.lock().unwrap_or_else(|p| p.into_inner());
                counters.shuffle_fetch_micros += started.elapsed().as_micros() as u64;
                match next.map_err(|e| format!("node {node}: {e}"))? {
                    Response::BucketBatch(b) => {
                        counters.shuffle_bytes_fetched += b.len() as u64;
                        return Ok(Some(Bytes::from(b)));
                    }
                    Response::EndOfBucket => {
                        self.remote = None;
                        continue;
                    }
                    Response::Refused { reason } => return Err(format!("node {node}: {reason}")),
                    other => return Err(format!("node {node}: unexpected {other:?}")),
                }
            }
            if !self.open_next()? {
                return Ok(None);
            }
        }
    }

    fn errors_are_transient(&self) -> bool {
        true
    }
}

/// Open (or reuse) a mutually authenticated connection to another node's shuffle service.
pub(crate) async fn connect(
    endpoint: &quinn::Endpoint,
    addr: &str,
) -> Result<quinn::Connection, TransportError> {
    let addr: SocketAddr =
        addr.parse().map_err(|_| TransportError::Io(format!("bad shuffle address {addr:?}")))?;
    transport::connect_to(endpoint, addr, NODE_NAME).await
}
