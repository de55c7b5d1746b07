//! # weft-wire: how Weft processes talk to each other
//!
//! - [`frame`]: length-prefixed frames and their decoder — a pure state machine, fed bytes and
//!   asked for frames, with a hard size limit. No I/O, tested in memory.
//! - [`protocol`]: the messages (serde + MessagePack) and the version handshake every stream
//!   starts with.
//! - [`registry`]: named modules and their versions, as clients list them.
//! - [`tenancy`]: tenants' caps and listings, as clients and the coordinator exchange them.
//! - [`pki`]: the cluster's certificate authority, node certificates, and the join/admin tokens
//!   (which carry the CA's fingerprint so that whoever holds a token can authenticate the
//!   coordinator before trusting it).
//! - [`transport`]: the thin I/O layer — QUIC (quinn) endpoints with rustls, mutual TLS between
//!   coordinator and nodes, and reading/writing frames on QUIC streams.
//!
//! Design choice: every stream carries one exchange — a [`protocol::Hello`], a request, and its
//! response(s) — so that a broken or hostile peer can only ever spoil its own stream and
//! connection, never another's.

pub mod frame;
pub mod pki;
pub mod protocol;
pub mod registry;
pub mod tenancy;
pub mod transport;
