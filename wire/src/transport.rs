//! The I/O layer: QUIC endpoints (quinn) secured with rustls (TLS 1.3, ring), and framed
//! messages on QUIC streams. Everything above it speaks [`protocol`](crate::protocol) messages.
//!
//! Trust: servers present a chain ending in the cluster CA. Nodes and clients that only hold a
//! token pin the CA by fingerprint ([`ServerTrust::PinnedCa`]); a node that already joined
//! trusts the CA certificate it received ([`ServerTrust::Ca`]). The coordinator accepts
//! connections without a client certificate only so that joining nodes and clients can present
//! tokens; every such request is checked against its token (see the protocol table).

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
use std::time::Duration;
use thiserror::Error;

/// ALPN protocol id of Weft connections.
pub const ALPN: &[u8] = b"weft/1";

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

/// A client endpoint that trusts servers by `trust`, presenting `identity` if given.
pub fn client_endpoint(
    trust: ServerTrust,
    identity: Option<&Identity>,
) -> Result<quinn::Endpoint, TransportError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?;
    let builder = match trust {
        ServerTrust::PinnedCa(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCaVerifier { fingerprint: fp })),
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
    Ok(endpoint)
}

/// Connect to the coordinator at `addr`.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
) -> Result<quinn::Connection, TransportError> {
    connect_to(endpoint, addr, COORDINATOR_NAME).await
}

/// Connect to the server at `addr` whose certificate is issued for `name` (a node's shuffle
/// service is `pki::NODE_NAME`).
pub async fn connect_to(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    name: &str,
) -> Result<quinn::Connection, TransportError> {
    let connecting = endpoint.connect(addr, name).map_err(io)?;
    connecting.await.map_err(|e| {
        let text = e.to_string();
        if text.contains(NOT_OUR_CLUSTER) {
            TransportError::NotOurCluster { addr }
        } else {
            TransportError::Io(format!("cannot connect to {addr}: {text}"))
        }
    })
}

/// What the pinning verifier reports; recognised in [`connect`] to tell this failure apart.
const NOT_OUR_CLUSTER: &str = "server certificate is not from the pinned cluster CA";

/// Verifies the server by the pinned fingerprint of its CA, then normally under that CA.
#[derive(Debug)]
struct PinnedCaVerifier {
    fingerprint: String,
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
        let ca = intermediates
            .iter()
            .find(|c| fingerprint(c) == self.fingerprint)
            .ok_or_else(|| rustls::Error::General(NOT_OUR_CLUSTER.into()))?;
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
}

impl FramedRecv {
    /// Wrap `recv`, refusing frames over `max` bytes.
    pub fn new(recv: quinn::RecvStream, max: usize) -> Self {
        FramedRecv { recv, decoder: FrameDecoder::new(max) }
    }

    /// The next message, or `None` when the peer finished the stream cleanly.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, TransportError> {
        loop {
            if let Some(body) = self.decoder.next_frame()? {
                return Ok(Some(frame::decode(&body)?));
            }
            match self.recv.read_chunk(64 << 10, true).await.map_err(io)? {
                Some(chunk) => self.decoder.push(&chunk.bytes),
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
}

/// Send one message as a frame.
pub async fn send<T: Serialize>(
    send: &mut quinn::SendStream,
    message: &T,
) -> Result<(), TransportError> {
    let bytes = frame::encode(message, DEFAULT_MAX_FRAME)?;
    send.write_all(&bytes).await.map_err(io)
}

/// Client side of an exchange: send hello and request on a new stream of `conn`; returns the
/// stream to read the response(s) from.
pub async fn open_request(
    conn: &quinn::Connection,
    request: &Request,
) -> Result<FramedRecv, TransportError> {
    let (mut tx, rx) = conn.open_bi().await.map_err(io)?;
    let mut rx = FramedRecv::new(rx, DEFAULT_MAX_FRAME);
    send(&mut tx, &Hello::ours()).await?;
    send(&mut tx, request).await?;
    tx.finish().map_err(io)?;
    match rx.expect::<HelloReply>().await? {
        HelloReply::Welcome { .. } => Ok(rx),
        HelloReply::Rejected { reason } => Err(TransportError::Rejected(reason)),
    }
}

/// Client side of one exchange: hello, request, response, on a new stream of `conn`.
pub async fn request(
    conn: &quinn::Connection,
    request: &Request,
) -> Result<Response, TransportError> {
    open_request(conn, request).await?.expect::<Response>().await
}

/// Server side of one exchange: answer the hello and return the request (with the stream to
/// answer on), or `None` if the peer's hello was refused (already answered).
pub async fn accept_request(
    mut tx: quinn::SendStream,
    rx: quinn::RecvStream,
) -> Result<Option<(Request, quinn::SendStream)>, TransportError> {
    let mut rx = FramedRecv::new(rx, DEFAULT_MAX_FRAME);
    let hello: Hello = rx.expect().await?;
    let reply = answer_hello(&hello);
    send(&mut tx, &reply).await?;
    if let HelloReply::Rejected { reason } = reply {
        let _ = tx.finish();
        tracing::warn!(%reason, "refused a peer's hello");
        return Ok(None);
    }
    let request: Request = rx.expect().await?;
    Ok(Some((request, tx)))
}

/// Answer a request and finish the stream.
pub async fn respond(mut tx: quinn::SendStream, response: &Response) -> Result<(), TransportError> {
    send(&mut tx, response).await?;
    tx.finish().map_err(io)
}
