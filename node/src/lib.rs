//! # weft-node: the node daemon
//!
//! The node as a cluster member: join, register, heartbeat, run assigned tasks, serve shuffle
//! data to other nodes.
//!
//! Joining: the node generates its key pair, connects to the coordinator trusting only the CA
//! named by the join token's fingerprint, and sends the token's secret with a certificate signing
//! request. With the signed certificate it starts its shuffle service (mutual TLS only),
//! reconnects to the coordinator with mutual TLS, registers its slots and shuffle address, and
//! heartbeats every [`HEARTBEAT`] with its counters. The coordinator assigns tasks by opening
//! streams on that connection (`tasks`); the node runs at most its slots' worth at once and
//! refuses the rest. Compiled modules are kept by hash (`modules`); map outputs stay here, in
//! memory up to a bound and then on disk, and are served to other nodes (`shuffle`). If the
//! coordinator goes away the node keeps trying to join again (and drops the map outputs of the
//! old session, which nobody can name any more); a refused join token or a coordinator of
//! another cluster ends it.

mod broadcasts;
mod modules;
mod shuffle;
mod tasks;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;
use weft_sandbox::{Engine, ModuleCache, TaskHost};
use weft_storage::shuffle_store::ShuffleStore;
use weft_storage::{DataDir, Storage};
use weft_wire::frame::DEFAULT_MAX_FRAME;
use weft_wire::pki::{Identity, NodeKey, PkiError, Token};
use weft_wire::protocol::{Counters, Request, Response};
use weft_wire::transport::{self, ClientAuth, ClientEndpoint, ServerTrust, TransportError};

/// Interval between heartbeats.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Wait before trying to reach a coordinator again.
const RETRY: Duration = Duration::from_secs(1);

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The coordinator's address.
    pub coordinator: SocketAddr,
    /// The join token.
    pub join_token: Token,
    /// Task slots offered.
    pub slots: u32,
    /// A name for logs and `weft status`.
    pub name: String,
    /// Where job inputs are read and outputs written.
    pub data_dir: PathBuf,
    /// Scratch space (module cache).
    pub work_dir: PathBuf,
    /// Where the shuffle service listens (default: this machine's address towards the
    /// coordinator, any free port).
    pub shuffle_listen: Option<SocketAddr>,
    /// Bytes of map output kept in memory; more is spilled to `work_dir/shuffle`.
    pub shuffle_memory: u64,
}

/// Why a node stopped.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The coordinator refused the node.
    #[error("the coordinator refused this node: {0}")]
    Refused(String),
    /// A directory is unusable.
    #[error("{0}")]
    Setup(String),
    /// Key or certificate trouble.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The coordinator cannot be reached or authenticated.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The coordinator answered something that makes no sense here.
    #[error("unexpected answer from the coordinator: {0}")]
    Protocol(String),
}

/// Everything a node's tasks and services share.
pub(crate) struct NodeState {
    config: NodeConfig,
    storage: Arc<dyn Storage>,
    modules: modules::ModuleLoader,
    broadcasts: Arc<broadcasts::BroadcastCache>,
    shuffle: Arc<ShuffleStore>,
    counters: Mutex<Counters>,
    /// Tasks running now, and the most ever at once.
    running: AtomicU32,
    peak_running: AtomicU32,
    node_id: Mutex<String>,
    shuffle_addr: Mutex<String>,
    /// Client endpoint for node-to-node connections, with this node's certificate.
    peers: Mutex<Option<ClientEndpoint>>,
    peer_conns: Mutex<HashMap<String, quinn::Connection>>,
    /// Fetches pieces of buckets from other nodes.
    remote: Arc<shuffle::RemoteFetch>,
}

impl NodeState {
    fn node_id(&self) -> String {
        self.node_id.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn shuffle_addr(&self) -> String {
        self.shuffle_addr.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What a task running here sees: the node's data directory, or the tenant's data root the
    /// task names, checked here: a name must be one plain directory name inside the data
    /// directory (no `..`, no separator), and every path the task opens is confined to the root
    /// it resolves to (symlinks included) by [`DataDir`].
    fn task_host(&self, data_root: Option<&str>) -> Result<TaskHost, String> {
        let storage: Arc<dyn Storage> = match data_root {
            None => self.storage.clone(),
            Some(root) => {
                let path = std::path::Path::new(root);
                let dir = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    let mut parts = path.components();
                    match (parts.next(), parts.next()) {
                        (Some(std::path::Component::Normal(_)), None) => {
                            self.config.data_dir.join(path)
                        }
                        _ => return Err(format!("refused the task's data root {root:?}")),
                    }
                };
                Arc::new(DataDir::new(&dir).map_err(|e| format!("data root {root:?}: {e}"))?)
            }
        };
        Ok(TaskHost {
            storage,
            shuffle: self.shuffle.clone(),
            node_id: self.node_id(),
            shuffle_addr: self.shuffle_addr(),
            remote: Some(self.remote.clone()),
            broadcasts: self.broadcasts.clone(),
        })
    }

    /// A connection to another node's shuffle service: the open one, or a new one (no lock is
    /// held while connecting).
    async fn peer_connection(&self, addr: &str) -> Result<quinn::Connection, TransportError> {
        let endpoint = {
            let conns = self.peer_conns.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = conns.get(addr)
                && c.close_reason().is_none()
            {
                return Ok(c.clone());
            }
            self.peers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .ok_or_else(|| TransportError::Io("not joined yet".into()))?
        };
        let conn = shuffle::connect(&endpoint, addr).await?;
        self.peer_conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr.to_string(), conn.clone());
        Ok(conn)
    }
}

/// Run the node until it is refused or the process is stopped.
pub async fn run_node(config: NodeConfig) -> Result<(), NodeError> {
    let data = DataDir::new(&config.data_dir).map_err(|e| NodeError::Setup(e.to_string()))?;
    std::fs::create_dir_all(&config.work_dir).map_err(|e| {
        NodeError::Setup(format!("work directory {}: {e}", config.work_dir.display()))
    })?;
    let compiled =
        ModuleCache::open(&config.work_dir.join("compiled")).map_err(NodeError::Setup)?;
    let engine =
        Engine::new().map_err(|e| NodeError::Setup(e.to_string()))?.with_module_cache(compiled);
    // Spill files of an earlier run of this node (one that was killed) belong to nobody now.
    let spill_dir = config.work_dir.join("shuffle");
    if let Err(e) = std::fs::remove_dir_all(&spill_dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(NodeError::Setup(format!("cannot clear {}: {e}", spill_dir.display())));
    }
    let shuffle = ShuffleStore::new(spill_dir, config.shuffle_memory);
    let state = Arc::new_cyclic(|weak| NodeState {
        config: config.clone(),
        storage: Arc::new(data),
        modules: modules::ModuleLoader::new(Arc::new(engine)),
        broadcasts: Arc::default(),
        shuffle: Arc::new(shuffle),
        counters: Default::default(),
        running: AtomicU32::new(0),
        peak_running: AtomicU32::new(0),
        node_id: Default::default(),
        shuffle_addr: Default::default(),
        peers: Default::default(),
        peer_conns: Default::default(),
        remote: Arc::new(shuffle::RemoteFetch {
            state: weak.clone(),
            runtime: tokio::runtime::Handle::current(),
        }),
    });
    let mut first = true;
    loop {
        match join_and_register(&state).await {
            Ok(member) => {
                if first {
                    println!("joined the cluster at {} as {}", config.coordinator, member.node_id);
                    first = false;
                } else {
                    tracing::info!(node_id = %member.node_id, "joined the cluster again");
                }
                *state.node_id.lock().unwrap_or_else(|p| p.into_inner()) = member.node_id.clone();
                // Map outputs of an earlier session belong to jobs nobody can name any more.
                let store = state.shuffle.clone();
                let dropped = tokio::task::spawn_blocking(move || store.clear()).await.unwrap_or(0);
                if dropped > 0 {
                    tracing::info!(dropped, "dropped the map outputs of the previous session");
                }
                tokio::spawn(serve_coordinator(state.clone(), member.conn.clone()));
                let error = heartbeat_until_lost(&state, &member).await;
                tracing::warn!(%error, "lost the coordinator; will try to join again");
            }
            // Refusals and an impostor coordinator are final; an unreachable coordinator (not up
            // yet, restarting) is waited for.
            Err(NodeError::Transport(e)) if e.is_connection_trouble() => {
                tracing::warn!(%e, "cannot reach the coordinator; retrying");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// A node that joined: its id and mutually authenticated connection.
struct Membership {
    node_id: String,
    conn: quinn::Connection,
    _endpoint: ClientEndpoint,
}

async fn join_and_register(state: &Arc<NodeState>) -> Result<Membership, NodeError> {
    let config = &state.config;
    let key = NodeKey::generate()?;
    let pinned = transport::client_endpoint(
        ServerTrust::PinnedCa(config.join_token.ca_fingerprint.clone()),
        None,
    )?;
    let conn = transport::connect(&pinned, config.coordinator).await?;
    let join = Request::Join {
        token_secret: config.join_token.secret.clone(),
        name: config.name.clone(),
        csr_pem: key.csr_pem.clone(),
    };
    let (cert_pem, ca_pem) = match transport::request(&conn, &join).await? {
        Response::Joined { cert_pem, ca_pem, .. } => (cert_pem, ca_pem),
        Response::Refused { reason } => return Err(NodeError::Refused(reason)),
        other => return Err(NodeError::Protocol(format!("{other:?}"))),
    };
    conn.close(0u32.into(), b"joined");
    let identity = key.identity(&cert_pem, &ca_pem)?;
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| NodeError::Protocol(format!("bad CA certificate: {e}")))?;
    start_shuffle_service(state, &identity, &ca)?;
    let endpoint = transport::client_endpoint(ServerTrust::Ca(ca), Some(&identity))?;
    let conn = transport::connect(&endpoint, config.coordinator).await?;
    let register = Request::Register { slots: config.slots, shuffle_addr: state.shuffle_addr() };
    match transport::request(&conn, &register).await? {
        Response::Registered { node_id } => Ok(Membership { node_id, conn, _endpoint: endpoint }),
        Response::Refused { reason } => Err(NodeError::Refused(reason)),
        other => Err(NodeError::Protocol(format!("{other:?}"))),
    }
}

/// Start the shuffle service (once; later joins keep it) and the node-to-node client endpoint.
fn start_shuffle_service(
    state: &Arc<NodeState>,
    identity: &Identity,
    ca: &CertificateDer<'static>,
) -> Result<(), NodeError> {
    let mut peers = state.peers.lock().unwrap_or_else(|p| p.into_inner());
    if peers.is_some() {
        return Ok(());
    }
    let listen =
        state.config.shuffle_listen.unwrap_or_else(|| default_listen(state.config.coordinator));
    let server = transport::server_endpoint(listen, identity, ca, ClientAuth::Required)?;
    let bound =
        server.local_addr().map_err(|e| NodeError::Setup(format!("shuffle service: {e}")))?;
    *state.shuffle_addr.lock().unwrap_or_else(|p| p.into_inner()) = bound.to_string();
    tokio::spawn(shuffle::serve(state.clone(), server));
    *peers = Some(transport::client_endpoint(ServerTrust::Ca(ca.clone()), Some(identity))?);
    tracing::info!(%bound, "shuffle service listening");
    Ok(())
}

/// This machine's address on the route to the coordinator, with any free port.
fn default_listen(coordinator: SocketAddr) -> SocketAddr {
    let ip = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect(coordinator).and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(coordinator.ip());
    SocketAddr::new(ip, 0)
}

/// Serve the streams the coordinator opens on our connection (task assignments, releases).
async fn serve_coordinator(state: Arc<NodeState>, conn: quinn::Connection) {
    while let Ok((tx, rx)) = conn.accept_bi().await {
        let state = state.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            let (request, tx) = match transport::accept_request(tx, rx, DEFAULT_MAX_FRAME).await {
                Ok(Some(pair)) => pair,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "bad stream from the coordinator");
                    return;
                }
            };
            let answered = match request {
                Request::RunTask(task) => tasks::run_and_answer(state, &conn, *task, tx).await,
                Request::ReleaseShuffle { job, action, stage } => {
                    // Deleting spill files is blocking work.
                    let store = state.shuffle.clone();
                    let job_id = job.clone();
                    let released = tokio::task::spawn_blocking(move || match stage {
                        Some(stage) => store.release_stage(&job_id, action, stage),
                        None => store.release(&job_id, action),
                    })
                    .await;
                    tracing::debug!(%job, action, ?released, "released map outputs");
                    transport::respond(tx, &Response::Ack).await
                }
                other => {
                    let reason = format!("a node does not serve {other:?}");
                    transport::respond(tx, &Response::Refused { reason }).await
                }
            };
            if let Err(e) = answered {
                tracing::warn!(error = %e, "cannot answer the coordinator");
            }
        });
    }
}

async fn heartbeat_until_lost(state: &NodeState, member: &Membership) -> NodeError {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let running = state.running.load(Ordering::Relaxed);
        let mut counters = state.counters().clone();
        let shuffle = state.shuffle.stats();
        counters.map_outputs_held = shuffle.outputs;
        counters.shuffle_bytes_spilled = shuffle.spilled_bytes;
        counters.running_tasks = u64::from(running);
        counters.peak_running_tasks = u64::from(state.peak_running.load(Ordering::Relaxed));
        match transport::request(&member.conn, &Request::Heartbeat { running, counters }).await {
            Ok(Response::Ack) => {}
            Ok(Response::Refused { reason }) => return NodeError::Refused(reason),
            Ok(other) => return NodeError::Protocol(format!("{other:?}")),
            Err(e) => return e.into(),
        }
    }
}
