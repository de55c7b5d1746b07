//! The messages of the Weft cluster protocol and the version handshake.
//!
//! Every stream opens with a [`Hello`] from the side that opened it, answered by a
//! [`HelloReply`]; a peer speaking another protocol version is told so and the stream closes.
//! Then comes one [`Request`] and its [`Response`]. Who may send what:
//!
//! | request | sent by | authenticated by |
//! |---|---|---|
//! | `Join` | a node without a certificate yet | the join token's secret |
//! | `Register`, `Heartbeat` | a node | its client certificate (mutual TLS) |
//! | `ClusterStatus` | a client (`weft status`) | the admin token's secret |

use serde::{Deserialize, Serialize};

/// Version of this protocol; peers must match exactly.
pub const PROTOCOL_VERSION: u32 = 1;
/// Marks a Weft peer (and not, say, a stray client of another QUIC service).
pub const MAGIC: &str = "weft";

/// The first frame of every stream.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: String,
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u32,
}

impl Hello {
    /// Our hello.
    pub fn ours() -> Hello {
        Hello {
            magic: MAGIC.to_string(),
            version: PROTOCOL_VERSION,
        }
    }
}

/// The answer to a [`Hello`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum HelloReply {
    /// Go ahead.
    Welcome {
        /// The version both sides speak.
        version: u32,
    },
    /// Incompatible peer; the stream is closed after this.
    Rejected {
        /// Why, for the peer's log.
        reason: String,
    },
}

/// Decide the reply to a peer's hello (the whole handshake; no I/O involved).
pub fn answer_hello(hello: &Hello) -> HelloReply {
    if hello.magic != MAGIC {
        return HelloReply::Rejected {
            reason: format!("not a Weft peer (magic {:?})", hello.magic),
        };
    }
    if hello.version != PROTOCOL_VERSION {
        return HelloReply::Rejected {
            reason: format!(
                "protocol version {} is not supported; this side speaks version {PROTOCOL_VERSION} \
                 (run the same Weft release on every machine)",
                hello.version
            ),
        };
    }
    HelloReply::Welcome {
        version: PROTOCOL_VERSION,
    }
}

/// A request to the coordinator.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Request {
    /// Ask to join: prove knowledge of the join token, get the CSR signed.
    Join {
        /// The secret part of the join token.
        token_secret: String,
        /// The node's chosen name (for humans and logs).
        name: String,
        /// A PEM certificate signing request for the node's own key pair.
        csr_pem: String,
    },
    /// Announce capacity on a mutually authenticated connection.
    Register {
        /// Task slots.
        slots: u32,
        /// Where the node serves shuffle data to other nodes.
        shuffle_addr: String,
    },
    /// Still alive.
    Heartbeat {
        /// Tasks running now.
        running: u32,
    },
    /// Nodes and their state (admin).
    ClusterStatus {
        /// The secret part of the admin token.
        token_secret: String,
    },
}

/// The coordinator's answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Response {
    /// The join was accepted.
    Joined {
        /// Identifier the coordinator gave the node.
        node_id: String,
        /// The node's certificate, signed by the cluster CA (PEM).
        cert_pem: String,
        /// The cluster CA certificate (PEM).
        ca_pem: String,
    },
    /// Registration accepted.
    Registered {
        /// The node's identifier.
        node_id: String,
    },
    /// Heartbeat noted.
    HeartbeatAck,
    /// The cluster's nodes.
    ClusterStatus {
        /// One entry per node that ever registered since the coordinator started.
        nodes: Vec<NodeInfo>,
    },
    /// The request was refused.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A node as the coordinator sees it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// Identifier.
    pub id: String,
    /// The name the node chose.
    pub name: String,
    /// Task slots.
    pub slots: u32,
    /// Shuffle service address.
    pub shuffle_addr: String,
    /// Whether it heartbeated recently.
    pub alive: bool,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_accepts_only_our_magic_and_version() {
        assert_eq!(
            answer_hello(&Hello::ours()),
            HelloReply::Welcome {
                version: PROTOCOL_VERSION
            }
        );
        let old = Hello {
            magic: MAGIC.into(),
            version: PROTOCOL_VERSION + 1,
        };
        assert!(
            matches!(answer_hello(&old), HelloReply::Rejected { reason } if reason.contains("not supported"))
        );
        let alien = Hello {
            magic: "http".into(),
            version: PROTOCOL_VERSION,
        };
        assert!(
            matches!(answer_hello(&alien), HelloReply::Rejected { reason } if reason.contains("not a Weft peer"))
        );
    }
}
