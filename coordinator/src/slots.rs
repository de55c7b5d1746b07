//! One ledger of task slots for the whole cluster: a pure state machine (time is passed in),
//! shared by every job's executor, so that a node never runs more tasks than it offered however
//! many jobs there are.
//!
//! A job takes a slot with [`SlotLedger::try_acquire`] before it launches a task and gives it
//! back with [`SlotLedger::release`] when the task's outcome arrives — whether or not the job
//! still wants that outcome. Who may take a free slot is [`crate::fair_share`]'s call: tenants'
//! caps, weighted shares between tenants, max-min between one tenant's jobs, so that a job with
//! thousands of tasks cannot starve a small one that arrives later.
//!
//! A node whose task just failed for the machine's reasons (it was full, its disk failed, it
//! could not load the module) gets no task for [`PAUSE_AFTER_FAILURE`], so that the retry goes
//! elsewhere instead of to the node that looks the freest precisely because it fails at once —
//! and so that a node the ledger wrongly thinks free (it still runs tasks of an earlier session)
//! is asked at most once a pause, not in a tight loop.

use crate::fair_share::{Refusal, Shares};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use crate::fair_share::WAIT_EXPIRY;
/// How long a node is passed over after one of its tasks failed for the machine's reasons.
pub const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Most slots one node may offer.
pub const MAX_NODE_SLOTS: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodeSlots {
    slots: u32,
    used: u32,
    /// Passed over until then (a task of it just failed for the machine's reasons).
    paused_until: Option<Instant>,
}

/// Slots of every node, and who uses them.
#[derive(Debug, Default)]
pub struct SlotLedger {
    nodes: BTreeMap<String, NodeSlots>,
    shares: Shares,
}

impl SlotLedger {
    /// A node offers `slots` slots (at most [`MAX_NODE_SLOTS`]; again: a re-registration keeps
    /// the tasks it runs).
    pub fn set_node(&mut self, node: &str, slots: u32) {
        let used = self.nodes.get(node).map_or(0, |n| n.used);
        let slots = slots.min(MAX_NODE_SLOTS);
        self.nodes.insert(node.to_string(), NodeSlots { slots, used, paused_until: None });
    }

    /// A task on `node` failed for the machine's reasons: pass the node over for a moment.
    pub fn pause(&mut self, node: &str, now: Instant) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.paused_until = Some(now + PAUSE_AFTER_FAILURE);
        }
    }

    /// A node is gone; its tasks' slots go with it (their outcomes still release the job's
    /// share).
    pub fn remove_node(&mut self, node: &str) {
        self.nodes.remove(node);
    }

    /// Slots of all nodes.
    pub fn capacity(&self) -> u32 {
        self.nodes.values().fold(0u32, |sum, n| sum.saturating_add(n.slots))
    }

    /// Slots free now.
    pub fn free(&self) -> u32 {
        self.nodes.values().fold(0u32, |sum, n| sum.saturating_add(n.slots.saturating_sub(n.used)))
    }

    /// Tasks running on `node` by this ledger.
    pub fn used_on(&self, node: &str) -> u32 {
        self.nodes.get(node).map_or(0, |n| n.used)
    }

    /// Tasks `job` runs now.
    pub fn running(&self, job: &str) -> u32 {
        self.shares.running(job)
    }

    /// The tenants' shares (caps, weights, which job is whose, slot-seconds used).
    pub fn shares(&mut self) -> &mut Shares {
        &mut self.shares
    }

    /// A slot for `job`, on the node with the most free slots, if one is free and the fair
    /// share lets the job have it. Refused for want of a slot or of share, the job counts as
    /// waiting; refused for its tenant's cap, it does not.
    pub fn try_acquire(&mut self, job: &str, now: Instant) -> Option<String> {
        let allowed = self.shares.may_take(job, now);
        // The freest node that is not paused.
        let node = self
            .nodes
            .iter()
            .filter(|(_, n)| n.used < n.slots && n.paused_until.is_none_or(|t| now >= t))
            .max_by_key(|(id, n)| (n.slots - n.used, std::cmp::Reverse(id.as_str())))
            .map(|(id, _)| id.clone());
        match (node, allowed) {
            (Some(node), Ok(())) => {
                self.shares.took(job, now);
                self.nodes.get_mut(&node).expect("chosen above").used += 1;
                Some(node)
            }
            (_, Err(why)) => {
                self.shares.refused(job, why, now);
                None
            }
            (None, Ok(())) => {
                self.shares.refused(job, Refusal::Yield, now);
                None
            }
        }
    }

    /// The task `job` ran on `node` ended (or never started) at `now`.
    pub fn release(&mut self, node: &str, job: &str, now: Instant) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.used = n.used.saturating_sub(1);
        }
        self.shares.gave_back(job, now);
    }

    /// `job` does not want a slot now.
    pub fn stop_waiting(&mut self, job: &str) {
        self.shares.stop_waiting(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_jobs_never_use_more_slots_than_the_nodes_offer() {
        // Regression: slots used to be counted per job, so two jobs each filled every node.
        let now = Instant::now();
        let mut ledger = SlotLedger::default();
        ledger.set_node("n1", 2);
        ledger.set_node("n2", 2);
        let mut granted = Vec::new();
        for round in 0..10 {
            for job in ["a", "b"] {
                if let Some(node) = ledger.try_acquire(job, now) {
                    granted.push((job, node));
                }
            }
            assert!(ledger.used_on("n1") <= 2 && ledger.used_on("n2") <= 2, "round {round}");
        }
        assert_eq!(granted.len(), 4);
        assert_eq!((ledger.running("a"), ledger.running("b")), (2, 2), "shared fairly");
        assert_eq!(ledger.free(), 0);
        let (job, node) = granted.pop().unwrap();
        ledger.release(&node, job, now);
        assert_eq!(ledger.free(), 1);
    }

    #[test]
    fn a_waiting_job_with_fewer_tasks_gets_the_next_free_slot() {
        let now = Instant::now();
        let mut ledger = SlotLedger::default();
        ledger.set_node("n1", 3);
        for _ in 0..3 {
            assert!(ledger.try_acquire("big", now).is_some());
        }
        assert_eq!(ledger.try_acquire("small", now), None, "all slots busy");
        ledger.release("n1", "big", now);
        assert_eq!(ledger.try_acquire("big", now), None, "the slot is kept for the waiting job");
        assert_eq!(ledger.try_acquire("small", now).as_deref(), Some("n1"));
        assert_eq!((ledger.running("big"), ledger.running("small")), (2, 1));
    }

    #[test]
    fn a_job_that_keeps_asking_keeps_its_place_however_long_the_wait() {
        // Regression: the waiting mark dated from the first refusal, so after two seconds of
        // asking a small job lost its claim to the next free slot.
        let t0 = Instant::now();
        let mut ledger = SlotLedger::default();
        ledger.set_node("n1", 2);
        assert!(ledger.try_acquire("big", t0).is_some());
        assert!(ledger.try_acquire("big", t0).is_some());
        let mut now = t0;
        for _ in 0..50 {
            now += Duration::from_millis(200);
            assert_eq!(ledger.try_acquire("small", now), None);
        }
        ledger.release("n1", "big", now);
        assert_eq!(ledger.try_acquire("big", now), None, "ten seconds of asking still count");
        assert!(ledger.try_acquire("small", now).is_some());
    }

    #[test]
    fn a_node_that_just_failed_a_task_gets_none_until_its_pause_is_over() {
        let now = Instant::now();
        let mut ledger = SlotLedger::default();
        ledger.set_node("bad", 4);
        ledger.set_node("good", 1);
        ledger.pause("bad", now);
        assert_eq!(ledger.try_acquire("a", now).as_deref(), Some("good"));
        assert_eq!(ledger.try_acquire("a", now), None, "not even when it is the only free one");
        let later = now + PAUSE_AFTER_FAILURE;
        ledger.release("good", "a", now);
        assert_eq!(ledger.try_acquire("a", later).as_deref(), Some("bad"), "the pause is over");
        ledger.set_node("huge", u32::MAX);
        assert_eq!(ledger.capacity(), 5 + MAX_NODE_SLOTS);
    }

    #[test]
    fn a_job_that_stopped_asking_holds_nobody_back() {
        let now = Instant::now();
        let mut ledger = SlotLedger::default();
        ledger.set_node("n1", 2);
        assert!(ledger.try_acquire("big", now).is_some());
        assert!(ledger.try_acquire("big", now).is_some());
        assert_eq!(ledger.try_acquire("small", now), None);
        ledger.release("n1", "big", now);
        assert_eq!(ledger.try_acquire("big", now), None, "kept for the waiting job");
        let later = now + WAIT_EXPIRY + Duration::from_millis(1);
        assert!(ledger.try_acquire("big", later).is_some(), "its waiting mark expired");
        assert_eq!(ledger.try_acquire("small", later), None);
        ledger.release("n1", "big", now);
        ledger.stop_waiting("small");
        assert!(ledger.try_acquire("big", later).is_some(), "it said it no longer waits");
    }

    #[test]
    fn lost_nodes_take_their_slots_and_tasks_pick_the_freest_node() {
        let now = Instant::now();
        let mut ledger = SlotLedger::default();
        ledger.set_node("n1", 1);
        ledger.set_node("n2", 3);
        assert_eq!(ledger.try_acquire("a", now).as_deref(), Some("n2"));
        assert_eq!(ledger.capacity(), 4);
        ledger.remove_node("n2");
        assert_eq!((ledger.capacity(), ledger.free()), (1, 1));
        // The outcome of the task on the lost node still ends the job's share.
        ledger.release("n2", "a", now);
        assert_eq!(ledger.running("a"), 0);
        assert_eq!(ledger.try_acquire("a", now).as_deref(), Some("n1"));
        assert_eq!(ledger.try_acquire("a", now), None);
    }
}
