//! The cluster's nodes as the coordinator's jobs see them: who is there ([`NodeRegistry`]), how
//! to reach each one ([`NodeLink`], implemented over QUIC in `cluster`), the one [`SlotLedger`]
//! for all jobs, and the job executors that hear about nodes coming and going.

use super::registry::{FORGET_AFTER, NodeRegistry};
use crate::executor::{ExecutorEvent, TaskSuccess};
use crate::slots::SlotLedger;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use weft_abi::task::{TaskFailure, TaskSpec};
use weft_wire::protocol::{Counters, NodeInfo};

/// How the coordinator talks to one node.
#[async_trait::async_trait]
pub trait NodeLink: Send + Sync {
    /// Run `task` on the node, giving up after `timeout`.
    async fn run_task(&self, task: TaskSpec, timeout: Duration)
    -> Result<TaskSuccess, TaskFailure>;
    /// An action ended: the node may drop its map outputs (only those of `stage`, if given).
    async fn release(&self, job: String, action: u32, stage: Option<u32>);
    /// The node is considered lost: close the link (in-flight requests fail).
    fn close(&self, reason: &str);
    /// Which connection the link is (the same for every link over one connection).
    fn connection_id(&self) -> u64;
}

/// The nodes, their links and slots, and who listens for changes.
#[derive(Default)]
pub struct NodePool {
    registry: Mutex<NodeRegistry>,
    links: Mutex<HashMap<String, Arc<dyn NodeLink>>>,
    ledger: Mutex<SlotLedger>,
    listeners: Mutex<HashMap<u64, Listener>>,
    next_listener: AtomicU64,
}

/// A job's executor listening for changes. At most one `SlotsChanged` waits in its channel at a
/// time (`pending`), so a job whose driver is busy between actions does not pile up one event
/// per task of every other job.
struct Listener {
    events: Sender<ExecutorEvent>,
    pending: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NodePool {
    /// A node joined with a certificate of this fingerprint: its new id (`None`: table full).
    pub fn joined(&self, name: &str, cert_fingerprint: String, now: Instant) -> Option<String> {
        lock(&self.registry).joined(name, cert_fingerprint, now)
    }

    /// The node holding the certificate with this fingerprint.
    pub fn node_for_cert(&self, cert_fingerprint: &str) -> Option<String> {
        lock(&self.registry).node_for_cert(cert_fingerprint).map(str::to_string)
    }

    /// A node announced its slots and can be reached through `link`.
    pub fn register(
        &self,
        id: &str,
        slots: u32,
        shuffle_addr: String,
        link: Arc<dyn NodeLink>,
        now: Instant,
    ) -> bool {
        if !lock(&self.registry).registered(id, slots, shuffle_addr, now) {
            return false;
        }
        if let Some(old) = lock(&self.links).insert(id.to_string(), link) {
            old.close("registered again");
        }
        lock(&self.ledger).set_node(id, slots);
        self.broadcast(ExecutorEvent::SlotsChanged);
        true
    }

    /// A node is alive.
    pub fn heartbeat(&self, id: &str, counters: Counters, now: Instant) -> bool {
        lock(&self.registry).heartbeat(id, counters, now)
    }

    /// Close the links of nodes that stopped heartbeating, take their slots away and tell every
    /// job; forget nodes lost long ago. Returns the nodes found lost now.
    pub fn reap(&self, now: Instant) -> Vec<String> {
        let lost = lock(&self.registry).lost(now);
        let mut reaped = Vec::new();
        for id in lost {
            let Some(link) = lock(&self.links).remove(&id) else { continue };
            link.close("node lost");
            lock(&self.ledger).remove_node(&id);
            self.broadcast(ExecutorEvent::NodeLost(id.clone()));
            reaped.push(id);
        }
        lock(&self.registry).forget_lost(now, FORGET_AFTER);
        reaped
    }

    /// A node's connection `connection` ended: if that is the connection it registered on, the
    /// node is gone (a node that comes back joins again, as a new node). Whether it was up until
    /// now.
    pub fn disconnected(&self, id: &str, connection: u64) -> bool {
        {
            let mut links = lock(&self.links);
            if links.get(id).is_none_or(|l| l.connection_id() != connection) {
                return false;
            }
            links.remove(id);
        }
        lock(&self.registry).disconnected(id);
        lock(&self.ledger).remove_node(id);
        self.broadcast(ExecutorEvent::NodeLost(id.to_string()));
        true
    }

    /// Every known node and its state.
    pub fn status(&self, now: Instant) -> Vec<NodeInfo> {
        let ledger = lock(&self.ledger);
        lock(&self.registry).status(now, |id| ledger.used_on(id))
    }

    /// The link to a node that is up.
    pub fn link(&self, id: &str) -> Option<Arc<dyn NodeLink>> {
        lock(&self.links).get(id).cloned()
    }

    /// Links to every node that is up.
    pub fn links(&self) -> Vec<Arc<dyn NodeLink>> {
        lock(&self.links).values().cloned().collect()
    }

    /// The slot ledger.
    pub fn ledger(&self) -> MutexGuard<'_, SlotLedger> {
        lock(&self.ledger)
    }

    /// Hear about nodes lost and slots freed; returns the id to [`unlisten`](Self::unlisten)
    /// and the flag to clear when a `SlotsChanged` is received.
    pub fn listen(&self, events: Sender<ExecutorEvent>) -> (u64, Arc<AtomicBool>) {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        let pending = Arc::new(AtomicBool::new(false));
        lock(&self.listeners).insert(id, Listener { events, pending: pending.clone() });
        (id, pending)
    }

    /// Stop hearing.
    pub fn unlisten(&self, id: u64) {
        lock(&self.listeners).remove(&id);
    }

    /// Tell every listener (a `SlotsChanged` only to those that have none waiting).
    pub fn broadcast(&self, event: ExecutorEvent) {
        let coalesce = event == ExecutorEvent::SlotsChanged;
        lock(&self.listeners).retain(|_, l| {
            if coalesce && l.pending.swap(true, Ordering::AcqRel) {
                return true;
            }
            l.events.send(event.clone()).is_ok()
        });
    }
}
