//! The I/O layer: QUIC endpoints (quinn) secured with rustls (TLS 1.3, ring), and framed
//! messages on QUIC streams. Everything above it speaks [`protocol`](crate::protocol) messages.
//!
//! Trust: servers present a chain ending in the cluster CA. Nodes and clients that only hold a
//! token pin the CA by fingerprint ([`ServerTrust::PinnedCa`]); a node that already joined
//! trusts the CA certificate it received ([`ServerTrust::Ca`]). The coordinator accepts
//! connections without a client certificate only so that joining nodes and clients can present
//! tokens; such a connection may open [`ANONYMOUS_STREAMS`] streams at a time until it has
//! authenticated (see the protocol table).
//!
//! Deadlines: QUIC notices a peer that is gone (idle timeout), not one that is connected but
//! stuck. So every exchange here has a deadline of its own: a client's request
//! ([`REQUEST_TIMEOUT`] unless it says otherwise), a server reading a request
//! ([`READ_REQUEST_TIMEOUT`]), and every frame sent ([`SEND_TIMEOUT`]) — a peer that stops
//! reading cannot hold a stream, and the task behind it, forever.

use crate::frame::{self, DEFAULT_MAX_FRAME, FrameDecoder, FrameError};
use crate::pki::{COORDINATOR_NAME, Identity, fingerprint};
use crate::protocol::{Hello, HelloReply, Request, Response, answer_hello};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use std::time::Instant;
use thiserror::Error;

/// ALPN protocol id of Weft connections.
pub const ALPN: &[u8] = b"weft/1";

/// Streams a connection may have open at once before it authenticated.
pub const ANONYMOUS_STREAMS: u32 = 4;
/// Streams an authenticated connection may have open at once.
pub const AUTHENTICATED_STREAMS: u32 = 64;
/// Default deadline of a request, from opening its stream to its (first) response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server waits for a stream's hello and request.
pub const READ_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long sending one frame may take (the peer must keep reading).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A transport failure.
#[derive(Debug, Error)]
pub enum TransportError {
    /// Socket, connection or stream error.
    #[error("connection error: {0}")]
    Io(String),
    /// TLS configuration error.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A bad frame from the peer.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer refused our hello.
    #[error("the peer refused the connection: {0}")]
    Rejected(String),
    /// The stream ended before the expected message.
    #[error("the peer closed the stream early")]
    Closed,
    /// The server's certificate is not from the cluster CA the token names.
    #[error("{addr} is not part of the cluster named by the token (its CA fingerprint differs)")]
    NotOurCluster {
        /// The server's address.
        addr: SocketAddr,
    },
    /// The peer did not answer (or read) in time.
    #[error("the peer did not answer within {0:?}")]
    Timeout(Duration),
}

impl TransportError {
    /// Whether the failure is about the connection (lost, timed out) rather than about what was
    /// said on it: the former may go away with another attempt, the latter will not.
    pub fn is_connection_trouble(&self) -> bool {
        matches!(self, TransportError::Io(_) | TransportError::Closed | TransportError::Timeout(_))
    }
}

fn io(e: impl std::fmt::Display) -> TransportError {
    TransportError::Io(e.to_string())
}

fn tls(e: impl std::fmt::Display) -> TransportError {
    TransportError::Tls(e.to_string())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether a server requires clients to present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Mutual TLS only (node to node).
    Required,
    /// Certificate or token (the coordinator: nodes have certificates, clients have tokens).
    Optional,
}

/// A QUIC server endpoint on `addr` presenting `identity`, verifying client certificates
/// against `ca`.
pub fn server_endpoint(
    addr: SocketAddr,
    identity: &Identity,
    ca: &CertificateDer<'static>,
    auth: ClientAuth,
) -> Result<quinn::Endpoint, TransportError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).map_err(tls)?;
    let builder =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider());
    let verifier = match auth {
        ClientAuth::Required => builder.build(),
        ClientAuth::Optional => builder.allow_unauthenticated().build(),
    }
    .map_err(tls)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(tls)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(config).map_err(tls)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_secs(10).try_into().map_err(io)?));
    // Raised with `set_max_concurrent_bi_streams` once a connection is authenticated.
    let streams = match auth {
        ClientAuth::Required => AUTHENTICATED_STREAMS,
        ClientAuth::Optional => ANONYMOUS_STREAMS,
    };
    transport.max_concurrent_bidi_streams(streams.into());
    transport.max_concurrent_uni_streams(0u32.into());
    server.transport_config(Arc::new(transport));
    quinn::Endpoint::server(server, addr)
        .map_err(|e| TransportError::Io(format!("cannot listen on {addr}: {e}")))
}

/// How a client decides the server is the real coordinator (or node).
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// The server's chain must contain a CA with this SHA-256 fingerprint, and the leaf must be
    /// valid under it (what a token gives you).
    PinnedCa(String),
    /// The server's leaf must be valid under this CA certificate.
    Ca(CertificateDer<'static>),
}

/// A client endpoint, and how many servers it refused for not being of the pinned cluster.
#[derive(Clone, Debug)]
pub struct ClientEndpoint {
    endpoint: quinn::Endpoint,
    refused: Arc<AtomicU64>,
}

/// A client endpoint that trusts servers by `trust`, presenting `identity` if given.
pub fn client_endpoint(
    trust: ServerTrust,
    identity: Option<&Identity>,
) -> Result<ClientEndpoint, TransportError> {
    let refused = Arc::new(AtomicU64::new(0));
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?;
    let builder = match trust {
        ServerTrust::PinnedCa(fp) => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(PinnedCaVerifier {
                fingerprint: fp,
                refused: refused.clone(),
            }))
        }
        ServerTrust::Ca(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca).map_err(tls)?;
            builder.with_root_certificates(roots)
        }
    };
    let mut config = match identity {
        Some(id) => {
            builder.with_client_auth_cert(id.chain.clone(), id.key.clone_key()).map_err(tls)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(config).map_err(tls)?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(2)));
    transport.max_idle_timeout(Some(Duration::from_secs(10).try_into().map_err(io)?));
    client.transport_config(Arc::new(transport));
    let mut endpoint =
        quinn::Endpoint::client("0.0.0.0:0".parse().expect("literal address")).map_err(io)?;
    endpoint.set_default_client_config(client);
    Ok(ClientEndpoint { endpoint, refused })
}

/// Connect to the coordinator at `addr`.
pub async fn connect(
    endpoint: &ClientEndpoint,
    addr: SocketAddr,
) -> Result<quinn::Connection, TransportError> {
    connect_to(endpoint, addr, COORDINATOR_NAME).await
}

/// Connect to the server at `addr` whose certificate is issued for `name` (a node's shuffle
/// service is `pki::NODE_NAME`), within [`REQUEST_TIMEOUT`].
pub async fn connect_to(
    endpoint: &ClientEndpoint,
    addr: SocketAddr,
    name: &str,
) -> Result<quinn::Connection, TransportError> {
    let refused_before = endpoint.refused.load(Ordering::Relaxed);
    let connecting = endpoint.endpoint.connect(addr, name).map_err(io)?;
    let connected = tokio::time::timeout(REQUEST_TIMEOUT, connecting)
        .await
        .map_err(|_| TransportError::Timeout(REQUEST_TIMEOUT))?;
    connected.map_err(|e| {
        // The pinning verifier counts the servers it refuses: a refusal during this handshake
        // is why it failed.
        if endpoint.refused.load(Ordering::Relaxed) > refused_before {
            TransportError::NotOurCluster { addr }
        } else {
            TransportError::Io(format!("cannot connect to {addr}: {e}"))
        }
    })
}

/// Verifies the server by the pinned fingerprint of its CA, then normally under that CA.
#[derive(Debug)]
struct PinnedCaVerifier {
    fingerprint: String,
    /// Servers refused for presenting another CA.
    refused: Arc<AtomicU64>,
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates.iter().find(|c| fingerprint(c) == self.fingerprint) else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(rustls::Error::General(
                "server certificate is not from the pinned cluster CA".into(),
            ));
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, &[], server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

/// Reads frames from a QUIC receive stream.
pub struct FramedRecv {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    last_progress: Instant,
}

impl FramedRecv {
    /// Wrap `recv`, refusing frames over `max` bytes.
    pub fn new(recv: quinn::RecvStream, max: usize) -> Self {
        FramedRecv { recv, decoder: FrameDecoder::new(max), last_progress: Instant::now() }
    }

    /// When bytes last arrived (or the stream was opened): a peer that is slow differs from one
    /// that sends nothing.
    pub fn last_progress(&self) -> Instant {
        self.last_progress
    }

    /// The next message, or `None` when the peer finished the stream cleanly.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, TransportError> {
        loop {
            if let Some(body) = self.decoder.next_frame()? {
                return Ok(Some(frame::decode(&body)?));
            }
            match self.recv.read_chunk(64 << 10, true).await.map_err(io)? {
                Some(chunk) => {
                    self.last_progress = Instant::now();
                    self.decoder.push(&chunk.bytes);
                }
                None => {
                    self.decoder.finish()?;
                    return Ok(None);
                }
            }
        }
    }

    /// The next message, which must be there.
    pub async fn expect<T: DeserializeOwned>(&mut self) -> Result<T, TransportError> {
        self.next().await?.ok_or(TransportError::Closed)
    }

    /// The next message, which must be there by `deadline`.
    pub async fn expect_by<T: DeserializeOwned>(
        &mut self,
        deadline: Instant,
    ) -> Result<T, TransportError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(timeout, self.expect())
            .await
            .map_err(|_| TransportError::Timeout(timeout))?
    }
}

/// Send one message as a frame, within [`SEND_TIMEOUT`].
pub async fn send<T: Serialize>(
    send: &mut quinn::SendStream,
    message: &T,
) -> Result<(), TransportError> {
    let bytes = frame::encode(message, DEFAULT_MAX_FRAME)?;
    tokio::time::timeout(SEND_TIMEOUT, send.write_all(&bytes))
        .await
        .map_err(|_| TransportError::Timeout(SEND_TIMEOUT))?
        .map_err(io)
}

/// Client side of an exchange: send hello and request on a new stream of `conn` and wait for
/// the hello's answer, all by `deadline`; returns the stream to read the response(s) from.
pub async fn open_request(
    conn: &quinn::Connection,
    request: &Request,
    deadline: Instant,
) -> Result<FramedRecv, TransportError> {
    let timeout = deadline.saturating_duration_since(Instant::now());
    let open = async {
        let (mut tx, rx) = conn.open_bi().await.map_err(io)?;
        let mut rx = FramedRecv::new(rx, DEFAULT_MAX_FRAME);
        send(&mut tx, &Hello::ours()).await?;
        send(&mut tx, request).await?;
        tx.finish().map_err(io)?;
        match rx.expect::<HelloReply>().await? {
            HelloReply::Welcome { .. } => Ok(rx),
            HelloReply::Rejected { reason } => Err(TransportError::Rejected(reason)),
        }
    };
    tokio::time::timeout(timeout, open).await.map_err(|_| TransportError::Timeout(timeout))?
}

/// Client side of one exchange: hello, request, response, on a new stream of `conn`, within
/// [`REQUEST_TIMEOUT`].
pub async fn request(
    conn: &quinn::Connection,
    request: &Request,
) -> Result<Response, TransportError> {
    request_within(conn, request, REQUEST_TIMEOUT).await
}

/// [`request`] with another deadline.
pub async fn request_within(
    conn: &quinn::Connection,
    request: &Request,
    timeout: Duration,
) -> Result<Response, TransportError> {
    let deadline = Instant::now() + timeout;
    let mut rx = open_request(conn, request, deadline).await?;
    rx.expect_by::<Response>(deadline).await
}

/// Server side of one exchange: answer the hello and return the request (with the stream to
/// answer on), or `None` if the peer's hello was refused (already answered). Frames over
/// `max_frame` bytes are refused, and the whole must arrive within [`READ_REQUEST_TIMEOUT`].
pub async fn accept_request(
    mut tx: quinn::SendStream,
    rx: quinn::RecvStream,
    max_frame: usize,
) -> Result<Option<(Request, quinn::SendStream)>, TransportError> {
    let deadline = Instant::now() + READ_REQUEST_TIMEOUT;
    let mut rx = FramedRecv::new(rx, max_frame);
    let hello: Hello = rx.expect_by(deadline).await?;
    let reply = answer_hello(&hello);
    send(&mut tx, &reply).await?;
    if let HelloReply::Rejected { reason } = reply {
        let _ = tx.finish();
        tracing::warn!(%reason, "refused a peer's hello");
        return Ok(None);
    }
    let request: Request = rx.expect_by(deadline).await?;
    Ok(Some((request, tx)))
}

/// Answer a request and finish the stream.
pub async fn respond(mut tx: quinn::SendStream, response: &Response) -> Result<(), TransportError> {
    send(&mut tx, response).await?;
    tx.finish().map_err(io)
}
