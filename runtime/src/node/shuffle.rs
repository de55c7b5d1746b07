//! The node's shuffle service: map outputs kept in memory and served to other nodes, and the
//! client side that fetches buckets from them.
//!
//! Buckets travel node to node over QUIC with mutual TLS (both sides hold certificates of the
//! cluster CA); each batch is its own frame, so a bucket of any size streams without being
//! assembled in one piece on the sending side. The coordinator never sees shuffle data.

use super::NodeState;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use weft_wire::pki::NODE_NAME;
use weft_wire::protocol::{MapKey, MapLocation, Request, Response};
use weft_wire::transport::{self, TransportError};

/// Map outputs held by this node.
#[derive(Default)]
pub(crate) struct ShuffleStore {
    maps: Mutex<HashMap<MapKey, Arc<Vec<Vec<Bytes>>>>>,
}

impl ShuffleStore {
    pub(crate) fn put(&self, key: MapKey, buckets: Vec<Vec<Bytes>>) -> Vec<u64> {
        let sizes = buckets.iter().map(|b| b.iter().map(|x| x.len() as u64).sum()).collect();
        self.maps.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Arc::new(buckets));
        sizes
    }

    /// Drop the map outputs of one action of one job; returns how many went.
    pub(crate) fn release(&self, job: &str, action: u32) -> usize {
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        let before = maps.len();
        maps.retain(|k, _| !(k.job == job && k.action == action));
        before - maps.len()
    }

    /// How many map outputs are held.
    pub(crate) fn len(&self) -> usize {
        self.maps.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn get(&self, key: &MapKey) -> Option<Arc<Vec<Vec<Bytes>>>> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }
}

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
    let Some(buckets) = state.shuffle.get(&key) else {
        return transport::respond(
            tx,
            &Response::Refused { reason: format!("no map output {key:?} here") },
        )
        .await;
    };
    let mut served = 0u64;
    for batch in buckets.get(bucket as usize).map(Vec::as_slice).unwrap_or_default() {
        served += batch.len() as u64;
        transport::send(&mut tx, &Response::BucketBatch(batch.to_vec())).await?;
    }
    state.counters.lock().unwrap_or_else(|p| p.into_inner()).shuffle_bytes_served += served;
    transport::respond(tx, &Response::EndOfBucket).await
}

/// Bucket `bucket` of every map output in `maps`, from this node's store or fetched from the
/// nodes holding them.
pub(crate) async fn fetch(
    state: &NodeState,
    maps: &[MapLocation],
    bucket: u32,
) -> Result<Vec<Bytes>, String> {
    let mut batches = Vec::new();
    for map in maps {
        if map.node_id == state.node_id() {
            let local = state
                .shuffle
                .get(&map.key)
                .ok_or_else(|| format!("map output {:?} is missing here", map.key))?;
            batches.extend(local.get(bucket as usize).cloned().unwrap_or_default());
            continue;
        }
        let started = std::time::Instant::now();
        let conn = state
            .peer_connection(&map.shuffle_addr)
            .await
            .map_err(|e| format!("node {}: {e}", map.node_id))?;
        let request = Request::FetchBucket { key: map.key.clone(), bucket };
        let mut rx = transport::open_request(&conn, &request)
            .await
            .map_err(|e| format!("node {}: {e}", map.node_id))?;
        let mut fetched = 0u64;
        loop {
            match rx.expect::<Response>().await.map_err(|e| format!("node {}: {e}", map.node_id))? {
                Response::BucketBatch(b) => {
                    fetched += b.len() as u64;
                    batches.push(Bytes::from(b));
                }
                Response::EndOfBucket => break,
                Response::Refused { reason } => {
                    return Err(format!("node {}: {reason}", map.node_id));
                }
                other => return Err(format!("node {}: unexpected {other:?}", map.node_id)),
            }
        }
        let mut counters = state.counters.lock().unwrap_or_else(|p| p.into_inner());
        counters.shuffle_bytes_fetched += fetched;
        counters.shuffle_fetch_micros += started.elapsed().as_micros() as u64;
    }
    Ok(batches)
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
