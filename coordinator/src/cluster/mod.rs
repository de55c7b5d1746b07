//! The coordinator as a network service: it holds the cluster PKI, admits nodes that present the
//! join token, tracks them through heartbeats, stores modules, runs jobs' drivers and sends their
//! tasks to nodes, and answers clients that present the admin token.
//!
//! Every connection is served by its own task and every stream by its own sub-task; a peer that
//! sends a malformed, truncated or oversized frame gets its connection closed (and logged),
//! which affects nobody else.

mod jobs;
mod registry;
mod remote;

pub use registry::{NODE_TIMEOUT, NodeRegistry};

use jobs::{JobTable, ModuleStore};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use weft_runtime::{DataDir, Engine, ModuleCache, SandboxPolicy};
use weft_wire::pki::{ClusterPki, PkiError, fingerprint, secrets_match};
use weft_wire::protocol::{Counters, JobEvent, Request, Response};
use weft_wire::transport::{self, ClientAuth, TransportError};

/// QUIC application error code used when closing a misbehaving peer's connection.
const CLOSE_PROTOCOL_ERROR: u32 = 1;

/// Why the coordinator service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// State directory or PKI trouble.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Listening failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Anything else while setting up.
    #[error("{0}")]
    Setup(String),
}

/// Everything the coordinator's connections, jobs and executors share.
pub(crate) struct Shared {
    pki: ClusterPki,
    nodes: Mutex<NodeRegistry>,
    /// Each registered node's mutually authenticated connection, on which tasks are sent.
    node_conns: Mutex<HashMap<String, quinn::Connection>>,
    modules: ModuleStore,
    jobs: JobTable,
    engine: Engine,
    data: DataDir,
    policy: SandboxPolicy,
    counters: Mutex<Counters>,
    handle: tokio::runtime::Handle,
}

/// A running coordinator service.
pub struct CoordinatorService {
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
}

impl CoordinatorService {
    /// Load (or create) the state in `state_dir` and listen on `listen`; jobs read and write in
    /// `data_dir` and run under `policy`. Must be called inside a tokio runtime.
    pub fn start(
        listen: SocketAddr,
        state_dir: &Path,
        data_dir: &Path,
        policy: SandboxPolicy,
    ) -> Result<CoordinatorService, ServiceError> {
        let pki = ClusterPki::load_or_create(state_dir)?;
        let data = DataDir::new(data_dir).map_err(|e| ServiceError::Setup(e.to_string()))?;
        let modules = ModuleStore::new(state_dir.join("modules"))
            .map_err(|e| ServiceError::Setup(format!("module store: {e}")))?;
        let compiled =
            ModuleCache::open(&state_dir.join("compiled")).map_err(ServiceError::Setup)?;
        let engine = Engine::new()
            .map_err(|e| ServiceError::Setup(e.to_string()))?
            .with_module_cache(compiled);
        let endpoint = transport::server_endpoint(
            listen,
            &pki.coordinator,
            pki.ca_der(),
            ClientAuth::Optional,
        )?;
        let shared = Arc::new(Shared {
            pki,
            nodes: Mutex::new(NodeRegistry::default()),
            node_conns: Mutex::default(),
            modules,
            jobs: JobTable::default(),
            engine,
            data,
            policy,
            counters: Mutex::default(),
            handle: tokio::runtime::Handle::current(),
        });
        Ok(CoordinatorService { endpoint, shared })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Serve until the endpoint closes.
    pub async fn serve(self) {
        tokio::spawn(reap_lost_nodes(self.shared.clone()));
        while let Some(incoming) = self.endpoint.accept().await {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                match incoming.await {
                    Ok(conn) => serve_connection(shared, conn).await,
                    Err(e) => tracing::info!(error = %e, "connection attempt failed"),
                }
            });
        }
    }
}

/// Close the connections of nodes that stopped heartbeating: their in-flight tasks fail at once
/// (and are retried elsewhere) instead of waiting for QUIC's idle timeout, and their map outputs
/// count as lost.
async fn reap_lost_nodes(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tick.tick().await;
        let lost: Vec<String> = lock(&shared.nodes)
            .status(Instant::now())
            .into_iter()
            .filter(|n| !n.alive)
            .map(|n| n.id)
            .collect();
        for id in lost {
            if let Some(conn) = lock(&shared.node_conns).remove(&id) {
                tracing::warn!(node_id = %id, "node lost: no heartbeat for {NODE_TIMEOUT:?}");
                conn.close(2u32.into(), b"node lost");
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The node id of the peer's client certificate, if it presented one the coordinator issued.
fn peer_node(shared: &Shared, conn: &quinn::Connection) -> Option<String> {
    let certs = conn.peer_identity()?.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    let leaf = certs.first()?;
    lock(&shared.nodes).node_for_cert(&fingerprint(leaf)).map(str::to_string)
}

async fn serve_connection(shared: Arc<Shared>, conn: quinn::Connection) {
    let remote = conn.remote_address();
    loop {
        let (tx, rx) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "connection closed");
                return;
            }
        };
        let shared = shared.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_stream(&shared, &conn, tx, rx).await {
                tracing::warn!(%remote, error = %e, "closing connection after a protocol error");
                conn.close(CLOSE_PROTOCOL_ERROR.into(), b"protocol error");
            }
        });
    }
}

async fn serve_stream(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    tx: quinn::SendStream,
    rx: quinn::RecvStream,
) -> Result<(), TransportError> {
    let Some((request, tx)) = transport::accept_request(tx, rx).await? else {
        return Ok(());
    };
    if let Request::Follow { token_secret, job_id } = request {
        return follow(shared, tx, &token_secret, &job_id).await;
    }
    let response = handle(shared, conn, request).await;
    transport::respond(tx, &response).await
}

fn refused(reason: &str) -> Response {
    Response::Refused { reason: reason.to_string() }
}

fn admin_ok(shared: &Shared, conn: &quinn::Connection, secret: &str) -> bool {
    let ok = secrets_match(secret, &shared.pki.admin_token.secret);
    if !ok {
        tracing::warn!(remote = %conn.remote_address(), "refused a client with a wrong admin token");
    }
    ok
}

async fn handle(shared: &Arc<Shared>, conn: &quinn::Connection, request: Request) -> Response {
    let now = Instant::now();
    match request {
        Request::Join { token_secret, name, csr_pem } => {
            if !secrets_match(&token_secret, &shared.pki.join_token.secret) {
                tracing::warn!(remote = %conn.remote_address(), "refused a node with a wrong join token");
                return refused("invalid join token");
            }
            let cert_pem = match shared.pki.sign_node_csr(&csr_pem) {
                Ok(pem) => pem,
                Err(e) => return refused(&format!("cannot sign the certificate request: {e}")),
            };
            let Ok(cert) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
                return refused("internal error: the signed certificate does not parse");
            };
            let node_id = lock(&shared.nodes).joined(&name, fingerprint(&cert), now);
            tracing::info!(%node_id, %name, remote = %conn.remote_address(), "node joined");
            Response::Joined { node_id, cert_pem, ca_pem: shared.pki.ca_pem().to_string() }
        }
        Request::Register { slots, shuffle_addr } => {
            let Some(id) = peer_node(shared, conn) else {
                return refused("registering requires the node certificate issued at join");
            };
            lock(&shared.nodes).registered(&id, slots, shuffle_addr, now);
            lock(&shared.node_conns).insert(id.clone(), conn.clone());
            tracing::info!(node_id = %id, slots, "node registered");
            Response::Registered { node_id: id }
        }
        Request::Heartbeat { counters, .. } => {
            let Some(id) = peer_node(shared, conn) else {
                return refused("heartbeats require the node certificate issued at join");
            };
            lock(&shared.nodes).heartbeat(&id, counters, now);
            Response::HeartbeatAck
        }
        Request::FetchModule { hash } => {
            if peer_node(shared, conn).is_none() {
                return refused("modules are served to nodes only");
            }
            match shared.modules.get(&hash) {
                Some(bytes) => {
                    lock(&shared.counters).module_bytes_sent += bytes.len() as u64;
                    Response::Module(bytes.to_vec())
                }
                None => refused(&format!("unknown module {hash}")),
            }
        }
        Request::ClusterStatus { token_secret } => {
            if !admin_ok(shared, conn, &token_secret) {
                return refused("invalid admin token");
            }
            let nodes = lock(&shared.nodes).status(now);
            Response::ClusterStatus { nodes, counters: lock(&shared.counters).clone() }
        }
        Request::HasModule { token_secret, hash } => {
            if !admin_ok(shared, conn, &token_secret) {
                return refused("invalid admin token");
            }
            Response::ModuleStatus { present: shared.modules.get(&hash).is_some() }
        }
        Request::UploadModule { token_secret, hash, wasm } => {
            if !admin_ok(shared, conn, &token_secret) {
                return refused("invalid admin token");
            }
            match shared.modules.put(&hash, wasm) {
                Ok(()) => Response::ModuleStored,
                Err(e) => refused(&e),
            }
        }
        Request::Submit { token_secret, hash, args } => {
            if !admin_ok(shared, conn, &token_secret) {
                return refused("invalid admin token");
            }
            let shared = shared.clone();
            // Compiling a module takes a moment: not on the async threads.
            let submitted =
                tokio::task::spawn_blocking(move || jobs::submit(&shared, &hash, args)).await;
            match submitted {
                Ok(Ok(job_id)) => Response::Submitted { job_id },
                Ok(Err(e)) => refused(&e),
                Err(e) => refused(&format!("internal error: {e}")),
            }
        }
        Request::Jobs { token_secret } => {
            if !admin_ok(shared, conn, &token_secret) {
                return refused("invalid admin token");
            }
            Response::Jobs(shared.jobs.list())
        }
        Request::JobStatus { token_secret, job_id } => {
            if !admin_ok(shared, conn, &token_secret) {
                return refused("invalid admin token");
            }
            match shared.jobs.get(&job_id) {
                Some(job) => Response::Jobs(vec![job.info()]),
                None => refused(&format!("no job {job_id}")),
            }
        }
        Request::Cancel { token_secret, job_id } => {
            if !admin_ok(shared, conn, &token_secret) {
                return refused("invalid admin token");
            }
            match shared.jobs.get(&job_id) {
                Some(job) => {
                    job.cancel();
                    tracing::info!(job = %job_id, "job cancelled");
                    Response::Jobs(vec![job.info()])
                }
                None => refused(&format!("no job {job_id}")),
            }
        }
        Request::Follow { .. } => refused("internal error: follow is streamed"),
        Request::RunTask(_) | Request::FetchBucket { .. } | Request::ReleaseShuffle { .. } => {
            refused("the coordinator does not run tasks")
        }
    }
}

/// Stream a job's events until it finishes.
async fn follow(
    shared: &Arc<Shared>,
    mut tx: quinn::SendStream,
    secret: &str,
    job_id: &str,
) -> Result<(), TransportError> {
    if !secrets_match(secret, &shared.pki.admin_token.secret) {
        return transport::respond(tx, &refused("invalid admin token")).await;
    }
    let Some(job) = shared.jobs.get(job_id) else {
        return transport::respond(tx, &refused(&format!("no job {job_id}"))).await;
    };
    let mut sent = 0;
    loop {
        let notified = job.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let events = job.events_from(sent);
        for event in &events {
            transport::send(&mut tx, &Response::Event(event.clone())).await?;
            if matches!(event, JobEvent::Finished { .. }) {
                let _ = tx.finish();
                return Ok(());
            }
        }
        sent += events.len();
        notified.await;
    }
}
