//! The node as a cluster member: join, register, heartbeat.
//!
//! Joining: the node generates its key pair, connects to the coordinator trusting only the CA
//! named by the join token's fingerprint, and sends the token's secret with a certificate signing
//! request. With the signed certificate it reconnects using mutual TLS, registers its slots and
//! heartbeats every [`HEARTBEAT`]. If the coordinator goes away, the node keeps trying to join
//! again (a restarted coordinator issues new node certificates); a refused join token ends it.

use crate::data_dir::DataDir;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;
use weft_wire::pki::{NodeKey, PkiError, Token};
use weft_wire::protocol::{Request, Response};
use weft_wire::transport::{self, ServerTrust, TransportError};

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
    /// Scratch space (shuffle spills, module cache).
    pub work_dir: PathBuf,
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

/// A node that joined: its id and mutually authenticated connection.
struct Membership {
    node_id: String,
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

/// Run the node until it is refused or the process is stopped.
pub async fn run_node(config: NodeConfig) -> Result<(), NodeError> {
    DataDir::new(&config.data_dir).map_err(|e| NodeError::Setup(e.to_string()))?;
    std::fs::create_dir_all(&config.work_dir).map_err(|e| {
        NodeError::Setup(format!("work directory {}: {e}", config.work_dir.display()))
    })?;
    let mut first = true;
    loop {
        match join_and_register(&config).await {
            Ok(member) => {
                if first {
                    println!(
                        "joined the cluster at {} as {}",
                        config.coordinator, member.node_id
                    );
                    first = false;
                } else {
                    tracing::info!(node_id = %member.node_id, "joined the cluster again");
                }
                let error = heartbeat_until_lost(&member).await;
                tracing::warn!(%error, "lost the coordinator; will try to join again");
            }
            // Refusals and an impostor coordinator are final; an unreachable coordinator (not up
            // yet, restarting) is waited for.
            Err(NodeError::Transport(e @ (TransportError::Io(_) | TransportError::Closed))) => {
                tracing::warn!(%e, "cannot reach the coordinator; retrying");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn join_and_register(config: &NodeConfig) -> Result<Membership, NodeError> {
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
        Response::Joined {
            cert_pem, ca_pem, ..
        } => (cert_pem, ca_pem),
        Response::Refused { reason } => return Err(NodeError::Refused(reason)),
        other => return Err(NodeError::Protocol(format!("{other:?}"))),
    };
    conn.close(0u32.into(), b"joined");
    let identity = key.identity(&cert_pem, &ca_pem)?;
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| NodeError::Protocol(format!("bad CA certificate: {e}")))?;
    let endpoint = transport::client_endpoint(ServerTrust::Ca(ca), Some(&identity))?;
    let conn = transport::connect(&endpoint, config.coordinator).await?;
    let register = Request::Register {
        slots: config.slots,
        shuffle_addr: String::new(),
    };
    match transport::request(&conn, &register).await? {
        Response::Registered { node_id } => Ok(Membership {
            node_id,
            conn,
            _endpoint: endpoint,
        }),
        Response::Refused { reason } => Err(NodeError::Refused(reason)),
        other => Err(NodeError::Protocol(format!("{other:?}"))),
    }
}

async fn heartbeat_until_lost(member: &Membership) -> NodeError {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        match transport::request(&member.conn, &Request::Heartbeat { running: 0 }).await {
            Ok(Response::HeartbeatAck) => {}
            Ok(Response::Refused { reason }) => return NodeError::Refused(reason),
            Ok(other) => return NodeError::Protocol(format!("{other:?}")),
            Err(e) => return e.into(),
        }
    }
}
