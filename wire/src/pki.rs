//! The cluster's public-key infrastructure and tokens.
//!
//! On first start the coordinator creates a certificate authority (CA) and its own certificate
//! signed by it, and two tokens: a join token for nodes and an admin token for clients. A token
//! is `weft-<kind>-<secret>-<ca fingerprint>`: the secret authenticates its holder to the
//! coordinator, and the fingerprint (SHA-256 of the CA certificate) lets the holder authenticate
//! the coordinator before sending the secret. Nodes that join send a certificate signing request
//! and get a certificate signed by the CA, which they then use for mutual TLS with the
//! coordinator and with each other.
//!
//! The CA key never leaves the coordinator's state directory (written with mode 0600).

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject};
use sha2::{Digest, Sha256};
use std::path::Path;
use thiserror::Error;

/// Name every coordinator certificate is issued for; clients verify it together with the CA pin.
pub const COORDINATOR_NAME: &str = "weft-coordinator";
/// Name every node certificate is issued for (nodes are told apart by their certificate, not
/// their name).
pub const NODE_NAME: &str = "weft-node";

/// A PKI or token failure.
#[derive(Debug, Error)]
pub enum PkiError {
    /// Reading or writing the state directory failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        reason: String,
    },
    /// A certificate or key could not be created, parsed or signed.
    #[error("certificate error: {0}")]
    Cert(String),
    /// A token is not of the expected form.
    #[error("malformed {kind} token: expected weft-{kind}-<secret>-<fingerprint>")]
    BadToken {
        /// `join`, `admin` or `tenant`.
        kind: &'static str,
    },
    /// A client's token is neither an admin nor a tenant token.
    #[error(
        "malformed token: expected weft-admin-<secret>-<fingerprint> or \
         weft-tenant-<secret>-<fingerprint>"
    )]
    BadClientToken,
}

fn cert_err(e: impl std::fmt::Display) -> PkiError {
    PkiError::Cert(e.to_string())
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first, then the CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

impl Identity {
    /// Parse PEM certificate chain and PKCS#8 key.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Identity, PkiError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(cert_err)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(cert_err)?;
        Ok(Identity { chain, key })
    }
}

/// SHA-256 of some bytes, in lowercase hex: how modules are addressed and CAs fingerprinted.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a DER certificate, in hex.
pub fn fingerprint(der: &[u8]) -> String {
    sha256_hex(der)
}

/// Which token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Lets a node join.
    Join,
    /// Lets a client submit and administer.
    Admin,
    /// Lets a client act as one tenant.
    Tenant,
}

impl TokenKind {
    fn name(self) -> &'static str {
        match self {
            TokenKind::Join => "join",
            TokenKind::Admin => "admin",
            TokenKind::Tenant => "tenant",
        }
    }
}

/// A parsed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is for.
    pub kind: TokenKind,
    /// The secret (hex).
    pub secret: String,
    /// The CA fingerprint (hex SHA-256).
    pub ca_fingerprint: String,
}

impl Token {
    /// Parse `weft-<kind>-<secret>-<fingerprint>`.
    pub fn parse(text: &str, kind: TokenKind) -> Result<Token, PkiError> {
        let bad = PkiError::BadToken { kind: kind.name() };
        let parts: Vec<&str> = text.trim().split('-').collect();
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        match parts.as_slice() {
            ["weft", k, secret, fp] if *k == kind.name() && hex(secret, 64) && hex(fp, 64) => {
                Ok(Token { kind, secret: secret.to_string(), ca_fingerprint: fp.to_string() })
            }
            _ => Err(bad),
        }
    }

    /// Parse a client's token: an admin or a tenant token.
    pub fn parse_client(text: &str) -> Result<Token, PkiError> {
        Token::parse(text, TokenKind::Admin)
            .or_else(|_| Token::parse(text, TokenKind::Tenant))
            .map_err(|_| PkiError::BadClientToken)
    }

    /// The token as text.
    pub fn to_text(&self) -> String {
        format!("weft-{}-{}-{}", self.kind.name(), self.secret, self.ca_fingerprint)
    }
}

/// Compare secrets without leaking where they differ through timing.
pub fn secrets_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh uniformly random 256-bit secret, in hex (tokens, shuffle keys).
pub fn random_secret() -> Result<String, PkiError> {
    // A fresh P-256 private key is 32 bytes from the system's CSPRNG; hashing its encoding
    // gives a uniformly random 256-bit secret without another dependency.
    let key = KeyPair::generate().map_err(cert_err)?;
    Ok(fingerprint(&key.serialize_der()))
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Weft cluster CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// The coordinator's durable PKI: CA, its own identity, and the tokens.
pub struct ClusterPki {
    ca_key: KeyPair,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    /// The coordinator's own certificate chain and key.
    pub coordinator: Identity,
    /// Token nodes present to join.
    pub join_token: Token,
    /// Token clients present.
    pub admin_token: Token,
}

impl ClusterPki {
    /// Load the PKI from `state_dir`, creating it on first start.
    pub fn load_or_create(state_dir: &Path) -> Result<ClusterPki, PkiError> {
        std::fs::create_dir_all(state_dir).map_err(|e| io_err(state_dir, e))?;
        let ca_key_path = state_dir.join("ca.key");
        let ca_key = if ca_key_path.exists() {
            KeyPair::from_pem(&read(&ca_key_path)?).map_err(cert_err)?
        } else {
            let key = KeyPair::generate().map_err(cert_err)?;
            let cert = ca_params().self_signed(&key).map_err(cert_err)?;
            write_private(&state_dir.join("ca.pem"), &cert.pem())?;
            write_private(&ca_key_path, &key.serialize_pem())?;
            key
        };
        let ca_pem = read(&state_dir.join("ca.pem"))?;
        let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(cert_err)?;
        let ca_fingerprint = fingerprint(&ca_der);
        let token = |file: &str, kind: TokenKind| -> Result<Token, PkiError> {
            let path = state_dir.join(file);
            if path.exists() {
                let token = Token::parse(&read(&path)?, kind)?;
                if token.ca_fingerprint != ca_fingerprint {
                    return Err(PkiError::Cert(format!(
                        "{} does not belong to this CA",
                        path.display()
                    )));
                }
                return Ok(token);
            }
            let token =
                Token { kind, secret: random_secret()?, ca_fingerprint: ca_fingerprint.clone() };
            write_private(&path, &format!("{}\n", token.to_text()))?;
            Ok(token)
        };
        let join_token = token("join-token", TokenKind::Join)?;
        let admin_token = token("admin-token", TokenKind::Admin)?;
        let mut pki = ClusterPki {
            ca_key,
            ca_der,
            ca_pem,
            coordinator: Identity {
                chain: Vec::new(),
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(Vec::new())),
            },
            join_token,
            admin_token,
        };
        pki.coordinator = pki.issue(COORDINATOR_NAME, true)?;
        Ok(pki)
    }

    /// The CA certificate.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::new(ca_params(), &self.ca_key)
    }

    /// A fresh key and certificate for `name`, signed by the CA.
    fn issue(&self, name: &str, server: bool) -> Result<Identity, PkiError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let params = leaf_params(name, server)?;
        let cert = params.signed_by(&key, &self.issuer()).map_err(cert_err)?;
        Ok(Identity {
            chain: vec![cert.der().clone(), self.ca_der.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }

    /// Sign a node's certificate request; returns the certificate (PEM). Whatever names the
    /// request asks for, the certificate is issued for [`NODE_NAME`] with client and server use.
    pub fn sign_node_csr(&self, csr_pem: &str) -> Result<String, PkiError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(cert_err)?;
        csr.params = leaf_params(NODE_NAME, true)?;
        let cert = csr.signed_by(&self.issuer()).map_err(cert_err)?;
        Ok(cert.pem())
    }
}

fn leaf_params(name: &str, server: bool) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(vec![name.to_string()]).map_err(cert_err)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if server {
        params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

/// A node's key pair and the request to sign it.
pub struct NodeKey {
    key: KeyPair,
    /// The PEM certificate signing request.
    pub csr_pem: String,
}

impl NodeKey {
    /// Generate a key pair and its CSR.
    pub fn generate() -> Result<NodeKey, PkiError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let csr_pem = leaf_params(NODE_NAME, true)?
            .serialize_request(&key)
            .map_err(cert_err)?
            .pem()
            .map_err(cert_err)?;
        Ok(NodeKey { key, csr_pem })
    }

    /// The node's identity once its certificate came back.
    pub fn identity(&self, cert_pem: &str, ca_pem: &str) -> Result<Identity, PkiError> {
        Identity::from_pem(&format!("{cert_pem}\n{ca_pem}"), &self.key.serialize_pem())
    }
}

fn io_err(path: &Path, e: std::io::Error) -> PkiError {
    PkiError::Io { path: path.display().to_string(), reason: e.to_string() }
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|e| io_err(path, e))
}

/// Write a file readable by its owner only, atomically (temporary file, then rename).
fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    file.write_all(contents.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = ClusterPki::load_or_create(dir.path()).unwrap();
        let second = ClusterPki::load_or_create(dir.path()).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());
        assert_eq!(first.join_token, second.join_token);
        assert_eq!(first.admin_token, second.admin_token);
        assert_ne!(first.join_token.secret, first.admin_token.secret);
        assert_eq!(first.join_token.ca_fingerprint, fingerprint(first.ca_der()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ca.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the CA key must not be readable by others");
    }

    #[test]
    fn tokens_round_trip_and_malformed_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ClusterPki::load_or_create(dir.path()).unwrap();
        let text = pki.join_token.to_text();
        assert_eq!(Token::parse(&text, TokenKind::Join).unwrap(), pki.join_token);
        assert!(Token::parse(&text, TokenKind::Admin).is_err());
        assert!(Token::parse("weft-join-abc-def", TokenKind::Join).is_err());
        assert!(secrets_match(&pki.join_token.secret, &pki.join_token.secret.clone()));
        assert!(!secrets_match(&pki.join_token.secret, &pki.admin_token.secret));
    }

    #[test]
    fn node_certificates_are_signed_by_the_cluster_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ClusterPki::load_or_create(dir.path()).unwrap();
        let node = NodeKey::generate().unwrap();
        let cert = pki.sign_node_csr(&node.csr_pem).unwrap();
        let identity = node.identity(&cert, pki.ca_pem()).unwrap();
        assert_eq!(identity.chain.len(), 2);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der().clone()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        verifier
            .verify_client_cert(&identity.chain[0], &[], rustls::pki_types::UnixTime::now())
            .unwrap();
        assert!(pki.sign_node_csr("not a csr").is_err());
    }
}
