//! The coordinator as a network service: it holds the cluster PKI, admits nodes that present the
//! join token, tracks them through heartbeats, and answers clients that present the admin token.
//!
//! Every connection is served by its own task and every stream by its own sub-task; a peer that
//! sends a malformed, truncated or oversized frame gets its connection closed (and logged),
//! which affects nobody else.

mod registry;

pub use registry::{NODE_TIMEOUT, NodeRegistry};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use weft_wire::pki::{ClusterPki, PkiError, fingerprint, secrets_match};
use weft_wire::protocol::{Request, Response};
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
}

struct Shared {
    pki: ClusterPki,
    nodes: Mutex<NodeRegistry>,
}

/// A running coordinator service.
pub struct CoordinatorService {
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
}

impl CoordinatorService {
    /// Load (or create) the state in `state_dir` and listen on `listen`.
    pub fn start(listen: SocketAddr, state_dir: &Path) -> Result<CoordinatorService, ServiceError> {
        let pki = ClusterPki::load_or_create(state_dir)?;
        let endpoint = transport::server_endpoint(
            listen,
            &pki.coordinator,
            pki.ca_der(),
            ClientAuth::Optional,
        )?;
        let shared = Arc::new(Shared {
            pki,
            nodes: Mutex::new(NodeRegistry::default()),
        });
        Ok(CoordinatorService { endpoint, shared })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Serve until the endpoint closes.
    pub async fn serve(self) {
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

/// The node id of the peer's client certificate, if it presented one the coordinator issued.
fn peer_node(shared: &Shared, conn: &quinn::Connection) -> Option<String> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    let leaf = certs.first()?;
    let nodes = shared.nodes.lock().unwrap_or_else(|p| p.into_inner());
    nodes.node_for_cert(&fingerprint(leaf)).map(str::to_string)
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
    shared: &Shared,
    conn: &quinn::Connection,
    tx: quinn::SendStream,
    rx: quinn::RecvStream,
) -> Result<(), TransportError> {
    let Some((request, tx)) = transport::accept_request(tx, rx).await? else {
        return Ok(());
    };
    let response = handle(shared, conn, request);
    transport::respond(tx, &response).await
}

fn refused(reason: &str) -> Response {
    Response::Refused {
        reason: reason.to_string(),
    }
}

fn handle(shared: &Shared, conn: &quinn::Connection, request: Request) -> Response {
    let now = Instant::now();
    match request {
        Request::Join {
            token_secret,
            name,
            csr_pem,
        } => {
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
            let der = fingerprint(&cert);
            let node_id = shared
                .nodes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .joined(&name, der, now);
            tracing::info!(%node_id, %name, remote = %conn.remote_address(), "node joined");
            Response::Joined {
                node_id,
                cert_pem,
                ca_pem: shared.pki.ca_pem().to_string(),
            }
        }
        Request::Register {
            slots,
            shuffle_addr,
        } => {
            let Some(id) = peer_node(shared, conn) else {
                return refused("registering requires the node certificate issued at join");
            };
            shared
                .nodes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .registered(&id, slots, shuffle_addr, now);
            tracing::info!(node_id = %id, slots, "node registered");
            Response::Registered { node_id: id }
        }
        Request::Heartbeat { .. } => {
            let Some(id) = peer_node(shared, conn) else {
                return refused("heartbeats require the node certificate issued at join");
            };
            shared
                .nodes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .heartbeat(&id, now);
            Response::HeartbeatAck
        }
        Request::ClusterStatus { token_secret } => {
            if !secrets_match(&token_secret, &shared.pki.admin_token.secret) {
                tracing::warn!(remote = %conn.remote_address(), "refused a client with a wrong admin token");
                return refused("invalid admin token");
            }
            let nodes = shared
                .nodes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .status(now);
            Response::ClusterStatus { nodes }
        }
    }
}
