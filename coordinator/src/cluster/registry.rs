//! Which nodes exist and whether they are alive: a pure state machine (time is passed in), so
//! liveness rules are tested without clocks or sockets.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use weft_wire::protocol::{Counters, NodeInfo};

/// A node that has not heartbeated for this long is considered gone.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);

struct NodeState {
    name: String,
    slots: u32,
    shuffle_addr: String,
    last_seen: Instant,
    registered: bool,
    counters: Counters,
}

/// All nodes known to the coordinator.
#[derive(Default)]
pub struct NodeRegistry {
    next_id: u64,
    nodes: HashMap<String, NodeState>,
    /// Node certificate fingerprint → node id.
    by_cert: HashMap<String, String>,
}

impl NodeRegistry {
    /// A node joined with a certificate of this fingerprint; returns its new id.
    pub fn joined(&mut self, name: &str, cert_fingerprint: String, now: Instant) -> String {
        self.next_id += 1;
        let id = format!("node-{}", self.next_id);
        self.nodes.insert(
            id.clone(),
            NodeState {
                name: name.to_string(),
                slots: 0,
                shuffle_addr: String::new(),
                last_seen: now,
                registered: false,
                counters: Counters::default(),
            },
        );
        self.by_cert.insert(cert_fingerprint, id.clone());
        id
    }

    /// The node holding the certificate with this fingerprint.
    pub fn node_for_cert(&self, cert_fingerprint: &str) -> Option<&str> {
        self.by_cert.get(cert_fingerprint).map(String::as_str)
    }

    /// A node announced its capacity.
    pub fn registered(&mut self, id: &str, slots: u32, shuffle_addr: String, now: Instant) -> bool {
        match self.nodes.get_mut(id) {
            Some(n) => {
                n.slots = slots;
                n.shuffle_addr = shuffle_addr;
                n.registered = true;
                n.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// A node is alive; `counters` are its latest.
    pub fn heartbeat(&mut self, id: &str, counters: Counters, now: Instant) -> bool {
        match self.nodes.get_mut(id) {
            Some(n) => {
                n.last_seen = now;
                n.counters = counters;
                true
            }
            None => false,
        }
    }

    /// Every registered node and whether it is alive at `now`, by id.
    pub fn status(&self, now: Instant) -> Vec<NodeInfo> {
        let mut nodes: Vec<NodeInfo> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.registered)
            .map(|(id, n)| {
                let since = now.saturating_duration_since(n.last_seen);
                NodeInfo {
                    id: id.clone(),
                    name: n.name.clone(),
                    slots: n.slots,
                    shuffle_addr: n.shuffle_addr.clone(),
                    alive: since < NODE_TIMEOUT,
                    last_seen_ms: since.as_millis() as u64,
                    counters: n.counters.clone(),
                }
            })
            .collect();
        nodes.sort_by_key(|n| n.id.trim_start_matches("node-").parse::<u64>().unwrap_or(u64::MAX));
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_alive_while_they_heartbeat() {
        let t0 = Instant::now();
        let mut r = NodeRegistry::default();
        let a = r.joined("a", "fp-a".into(), t0);
        let b = r.joined("b", "fp-b".into(), t0);
        assert_eq!(r.node_for_cert("fp-b"), Some(b.as_str()));
        assert!(r.status(t0).is_empty(), "joined but not registered yet");
        assert!(r.registered(&a, 4, "127.0.0.1:1".into(), t0));
        assert!(r.registered(&b, 2, "127.0.0.1:2".into(), t0));
        let later = t0 + NODE_TIMEOUT + Duration::from_millis(1);
        assert!(r.heartbeat(&a, Counters::default(), later - Duration::from_secs(1)));
        let status = r.status(later);
        assert_eq!(
            status.iter().map(|n| (n.id.as_str(), n.alive)).collect::<Vec<_>>(),
            [(a.as_str(), true), (b.as_str(), false)]
        );
        assert!(!r.heartbeat("node-99", Counters::default(), later));
        assert!(!r.registered("node-99", 1, String::new(), later));
    }
}
