//! The coordinator on the network: a QUIC endpoint whose connections are authenticated once into
//! a [`Principal`] and whose streams are handed to the [`handler`], which maps them onto the
//! [`CoordinatorApi`]. This module only translates between bytes and requests and enforces what
//! is about connections:
//!
//! - a connection's address is proven first (a QUIC stateless retry), then it is admitted only
//!   within the [`limits`] for that address, before its handshake — so a spoofed source address
//!   cannot use up another's places;
//! - a node is known by its client certificate; anybody else is anonymous until an
//!   `Authenticate` exchange, may open only a few streams at a time, may send no frame larger
//!   than [`MAX_ANONYMOUS_FRAME`], and is closed if it has not authenticated within
//!   [`AUTHENTICATE_WITHIN`];
//! - a peer that sends a malformed, truncated or oversized frame gets its connection closed (and
//!   logged), which affects nobody else; a stream that merely broke or timed out is dropped
//!   alone;
//! - when a node's connection ends, the node is taken out of the pool at once: its tasks fail
//!   and are retried elsewhere, its map outputs count as lost.

pub mod limits;
mod node_link;

use crate::service::handler::{self, Reply};
use crate::service::nodes::NodeLink;
use crate::service::{ApiConfig, ApiError, CoordinatorApi, JobFollower, Principal};
use limits::ConnectionLimits;
use node_link::QuicNodeLink;
use rustls::pki_types::CertificateDer;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use weft_wire::frame::DEFAULT_MAX_FRAME;
use weft_wire::pki::fingerprint;
use weft_wire::protocol::{JobEvent, MAX_ANONYMOUS_FRAME, Response};
use weft_wire::transport::{self, AUTHENTICATED_STREAMS, ClientAuth, TransportError};

/// QUIC application error code used when closing a misbehaving peer's connection.
const CLOSE_PROTOCOL_ERROR: u32 = 1;
/// How long a connection without a certificate may take to authenticate.
pub const AUTHENTICATE_WITHIN: Duration = Duration::from_secs(10);

/// Why the coordinator service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The state or data directory, or the PKI.
    #[error(transparent)]
    Setup(#[from] ApiError),
    /// Listening failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A running coordinator service.
pub struct CoordinatorService {
    endpoint: quinn::Endpoint,
    api: Arc<CoordinatorApi>,
    limits: Arc<Mutex<ConnectionLimits>>,
}

fn lock(limits: &Mutex<ConnectionLimits>) -> MutexGuard<'_, ConnectionLimits> {
    limits.lock().unwrap_or_else(|p| p.into_inner())
}

impl CoordinatorService {
    /// Load (or create) the state and listen on `listen`. Must be called inside a tokio runtime
    /// (it reads the state directory: call it before serving anything).
    pub fn start(
        listen: SocketAddr,
        config: ApiConfig,
    ) -> Result<CoordinatorService, ServiceError> {
        let api = CoordinatorApi::open(config, tokio::runtime::Handle::current())?;
        let pki = api.pki();
        let endpoint = transport::server_endpoint(
            listen,
            &pki.coordinator,
            pki.ca_der(),
            ClientAuth::Optional,
        )?;
        Ok(CoordinatorService { endpoint, api, limits: Arc::default() })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Serve until the endpoint closes.
    pub async fn serve(self) {
        let api = self.api.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                api.reap_lost_nodes();
            }
        });
        while let Some(incoming) = self.endpoint.accept().await {
            if !incoming.remote_address_validated() {
                // Guaranteed possible when the address is not validated yet.
                let _ = incoming.retry();
                continue;
            }
            let ip = incoming.remote_address().ip();
            if !lock(&self.limits).admit(ip) {
                tracing::warn!(%ip, "refused a connection: too many from this address");
                incoming.refuse();
                continue;
            }
            let (api, limits) = (self.api.clone(), self.limits.clone());
            tokio::spawn(async move {
                let anonymous = match incoming.await {
                    Ok(conn) => serve_connection(&api, conn, ip, &limits).await,
                    Err(e) => {
                        tracing::info!(error = %e, "connection attempt failed");
                        true
                    }
                };
                lock(&limits).closed(ip, anonymous);
            });
        }
    }
}

/// Who the connection acts for, once known.
#[derive(Clone)]
struct Session {
    principal: Arc<Mutex<Option<Principal>>>,
    ip: IpAddr,
}

impl Session {
    fn principal(&self) -> Option<Principal> {
        self.principal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Set the principal if none is set yet; whether this call set it.
    fn set(&self, principal: Principal) -> bool {
        let mut current = self.principal.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_some() {
            return false;
        }
        *current = Some(principal);
        true
    }
}

/// The node id of the peer's client certificate, if it presented one the coordinator issued.
fn peer_node(api: &CoordinatorApi, conn: &quinn::Connection) -> Option<Principal> {
    let certs = conn.peer_identity()?.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    api.node_principal(&fingerprint(certs.first()?))
}

/// Serve one connection's streams until it closes; returns whether it never authenticated.
async fn serve_connection(
    api: &Arc<CoordinatorApi>,
    conn: quinn::Connection,
    ip: IpAddr,
    limits: &Arc<Mutex<ConnectionLimits>>,
) -> bool {
    let remote = conn.remote_address();
    let session = Session { principal: Arc::default(), ip };
    if let Some(node) = peer_node(api, &conn) {
        authenticated(&conn, &session, node, limits);
    } else {
        // A stranger that never authenticates does not keep its connection.
        let (conn, session) = (conn.clone(), session.clone());
        tokio::spawn(async move {
            tokio::time::sleep(AUTHENTICATE_WITHIN).await;
            if session.principal().is_none() {
                tracing::info!(remote = %conn.remote_address(), "closing a connection that did not authenticate");
                conn.close(CLOSE_PROTOCOL_ERROR.into(), b"authenticate first");
            }
        });
    }
    loop {
        let (tx, rx) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "connection closed");
                let principal = session.principal();
                if let Some(Principal::Node(id)) = &principal {
                    api.node_disconnected(id, conn.stable_id() as u64);
                }
                return principal.is_none();
            }
        };
        let (api, conn, session, limits) =
            (api.clone(), conn.clone(), session.clone(), limits.clone());
        tokio::spawn(async move {
            match serve_stream(&api, &conn, &session, &limits, tx, rx).await {
                Ok(()) => {}
                Err(e @ (TransportError::Frame(_) | TransportError::Rejected(_))) => {
                    tracing::warn!(%remote, error = %e, "closing connection after a protocol error");
                    conn.close(CLOSE_PROTOCOL_ERROR.into(), b"protocol error");
                }
                // A stream that broke or timed out spoils nothing else.
                Err(e) => tracing::info!(%remote, error = %e, "dropped a stream"),
            }
        });
    }
}

fn authenticated(
    conn: &quinn::Connection,
    session: &Session,
    principal: Principal,
    limits: &Mutex<ConnectionLimits>,
) {
    if session.set(principal) {
        conn.set_max_concurrent_bi_streams(AUTHENTICATED_STREAMS.into());
        lock(limits).authenticated(session.ip);
    }
}

async fn serve_stream(
    api: &Arc<CoordinatorApi>,
    conn: &quinn::Connection,
    session: &Session,
    limits: &Mutex<ConnectionLimits>,
    tx: quinn::SendStream,
    rx: quinn::RecvStream,
) -> Result<(), TransportError> {
    let principal = session.principal();
    let max_frame = if principal.is_some() { DEFAULT_MAX_FRAME } else { MAX_ANONYMOUS_FRAME };
    let Some((request, tx)) = transport::accept_request(tx, rx, max_frame).await? else {
        return Ok(());
    };
    let Some(principal) = principal else {
        let (response, principal) = handler::handle_anonymous(api, request);
        if let Some(principal) = principal {
            authenticated(conn, session, principal, limits);
        } else if matches!(response, Response::Refused { .. }) {
            tracing::warn!(remote = %conn.remote_address(), ?response, "refused an unauthenticated request");
        }
        return transport::respond(tx, &response).await;
    };
    let link: Option<Arc<dyn NodeLink>> = match &principal {
        Principal::Node(id) => {
            Some(Arc::new(QuicNodeLink { node_id: id.clone(), conn: conn.clone() }))
        }
        Principal::Admin | Principal::Tenant(_) => None,
    };
    match handler::handle(api, &principal, request, link).await {
        Reply::One(response) => transport::respond(tx, &response).await,
        Reply::Follow(follower) => follow(follower, tx).await,
    }
}

/// Stream a job's events until it ends.
async fn follow(
    mut follower: JobFollower,
    mut tx: quinn::SendStream,
) -> Result<(), TransportError> {
    loop {
        let events = follower.next().await;
        if events.is_empty() {
            let _ = tx.finish();
            return Ok(());
        }
        for event in events {
            let last = matches!(event, JobEvent::Finished { .. });
            transport::send(&mut tx, &Response::Event(event)).await?;
            if last {
                let _ = tx.finish();
                return Ok(());
            }
        }
    }
}
