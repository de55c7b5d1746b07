//! Which nodes exist and whether they are alive: a pure state machine (time is passed in), so
//! liveness rules are tested without clocks or sockets.
//!
//! Every join makes a new node id (a node that comes back after losing the coordinator joins
//! again), so the table would grow without end in a long-lived coordinator: nodes lost for
//! [`FORGET_AFTER`] are forgotten, and at most [`MAX_NODES`] are kept at all.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use weft_wire::protocol::{Counters, NodeInfo};

/// A node that has not heartbeated for this long is considered gone.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);
/// A lost node stays listed (as lost) this long, then is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Most nodes the table keeps, alive or lost; joins beyond it are refused.
pub const MAX_NODES: usize = 10_000;

struct NodeState {
    name: String,
    cert_fingerprint: String,
    slots: u32,
    shuffle_addr: String,
    joined: Instant,
    last_seen: Instant,
    registered: bool,
    /// Its connection ended (it is lost, whatever its last heartbeat).
    disconnected: bool,
    counters: Counters,
}

impl NodeState {
    fn alive(&self, now: Instant) -> bool {
        !self.disconnected && now.saturating_duration_since(self.last_seen) < NODE_TIMEOUT
    }
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
    /// A node joined with a certificate of this fingerprint; returns its new id, or `None` when
    /// the table is full.
    pub fn joined(&mut self, name: &str, cert_fingerprint: String, now: Instant) -> Option<String> {
        if self.nodes.len() >= MAX_NODES {
            self.forget_lost(now, Duration::ZERO);
            if self.nodes.len() >= MAX_NODES {
                return None;
            }
        }
        self.next_id += 1;
        let id = format!("node-{}", self.next_id);
        self.nodes.insert(
            id.clone(),
            NodeState {
                name: name.to_string(),
                cert_fingerprint: cert_fingerprint.clone(),
                slots: 0,
                shuffle_addr: String::new(),
                joined: now,
                last_seen: now,
                registered: false,
                disconnected: false,
                counters: Counters::default(),
            },
        );
        self.by_cert.insert(cert_fingerprint, id.clone());
        Some(id)
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
                n.disconnected = false;
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

    /// Ids of registered nodes that stopped heartbeating (or whose connection ended) by `now`.
    pub fn lost(&self, now: Instant) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.registered && !n.alive(now))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// A node's connection ended.
    pub fn disconnected(&mut self, id: &str) {
        if let Some(n) = self.nodes.get_mut(id) {
            n.disconnected = true;
        }
    }

    /// Forget nodes silent for longer than `after` past the liveness timeout, and nodes that
    /// joined but never registered as long ago; returns their ids.
    pub fn forget_lost(&mut self, now: Instant, after: Duration) -> Vec<String> {
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| {
                let since = if n.registered { n.last_seen } else { n.joined };
                now.saturating_duration_since(since) >= NODE_TIMEOUT + after
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            if let Some(n) = self.nodes.remove(id) {
                self.by_cert.remove(&n.cert_fingerprint);
            }
        }
        gone
    }

    /// Every registered node and whether it is alive at `now`, by id; `used` gives the slots the
    /// coordinator's tasks use on a node.
    pub fn status(&self, now: Instant, used: impl Fn(&str) -> u32) -> Vec<NodeInfo> {
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
                    slots_used: used(id),
                    shuffle_addr: n.shuffle_addr.clone(),
                    alive: n.alive(now),
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
        let a = r.joined("a", "fp-a".into(), t0).unwrap();
        let b = r.joined("b", "fp-b".into(), t0).unwrap();
        assert_eq!(r.node_for_cert("fp-b"), Some(b.as_str()));
        assert!(r.status(t0, |_| 0).is_empty(), "joined but not registered yet");
        assert!(r.registered(&a, 4, "127.0.0.1:1".into(), t0));
        assert!(r.registered(&b, 2, "127.0.0.1:2".into(), t0));
        let later = t0 + NODE_TIMEOUT + Duration::from_millis(1);
        assert!(r.heartbeat(&a, Counters::default(), later - Duration::from_secs(1)));
        let status = r.status(later, |_| 0);
        assert_eq!(
            status.iter().map(|n| (n.id.as_str(), n.alive)).collect::<Vec<_>>(),
            [(a.as_str(), true), (b.as_str(), false)]
        );
        assert_eq!(r.lost(later), std::slice::from_ref(&b));
        assert!(!r.heartbeat("node-99", Counters::default(), later));
        assert!(!r.registered("node-99", 1, String::new(), later));
    }

    #[test]
    fn lost_nodes_are_forgotten_so_rejoins_do_not_grow_the_table() {
        // Regression: every re-join added a node that was never removed.
        let t0 = Instant::now();
        let mut r = NodeRegistry::default();
        let mut now = t0;
        for i in 0..100 {
            let id = r.joined("flaky", format!("fp-{i}"), now).unwrap();
            r.registered(&id, 1, String::new(), now);
            now += NODE_TIMEOUT + FORGET_AFTER + Duration::from_secs(1);
            r.forget_lost(now, FORGET_AFTER);
        }
        assert!(r.status(now, |_| 0).len() <= 1, "{} nodes kept", r.status(now, |_| 0).len());
        assert_eq!(r.node_for_cert("fp-0"), None, "a forgotten node's certificate no longer maps");
        // Nodes that joined and never registered go too.
        r.joined("half", "fp-half".into(), now);
        let gone = r.forget_lost(now + NODE_TIMEOUT, Duration::ZERO);
        assert!(!gone.is_empty());
        assert_eq!(r.node_for_cert("fp-half"), None);
    }
}
