//! Jobs that wait for their tenant's running-jobs cap (`--max-running-jobs`): a queue per tenant,
//! first in first out, as a pure structure (no threads, no I/O), tested in memory.
//!
//! A job is admitted at once if its tenant runs fewer jobs than its cap, else it waits. When one
//! of the tenant's jobs ends, the next waiting one is handed back to be started. A raised cap
//! lets waiting jobs start at once. The counts are the queue's own, changed under one lock with
//! the decision, so two submissions at the same moment cannot both take the last place.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Debug)]
struct TenantQueue<T> {
    cap: Option<u32>,
    running: u32,
    waiting: VecDeque<(String, T)>,
}

impl<T> Default for TenantQueue<T> {
    fn default() -> Self {
        TenantQueue { cap: None, running: 0, waiting: VecDeque::new() }
    }
}

impl<T> TenantQueue<T> {
    fn has_room(&self) -> bool {
        self.cap.is_none_or(|c| self.running < c)
    }

    /// Waiting jobs that may start now, counted as running.
    fn startable(&mut self) -> Vec<(String, T)> {
        let mut out = Vec::new();
        while self.has_room() {
            let Some(next) = self.waiting.pop_front() else { break };
            self.running += 1;
            out.push(next);
        }
        out
    }
}

/// What became of a submitted job.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<T> {
    /// Start it now (it counts as running).
    Start(T),
    /// It waits: `ahead` jobs wait before it, `running` of at most `cap` run.
    Queued {
        /// Jobs ahead of it.
        ahead: usize,
        /// The tenant's running jobs.
        running: u32,
        /// The tenant's cap.
        cap: u32,
    },
}

/// The per-tenant queues.
#[derive(Debug)]
pub struct JobQueue<T> {
    tenants: Mutex<HashMap<String, TenantQueue<T>>>,
}

impl<T> Default for JobQueue<T> {
    fn default() -> Self {
        JobQueue { tenants: Mutex::default() }
    }
}

impl<T> JobQueue<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TenantQueue<T>>> {
        self.tenants.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A tenant's cap changed (or is first known); returns the waiting jobs that may start now.
    pub fn set_cap(&self, tenant: &str, cap: Option<u32>) -> Vec<(String, T)> {
        let mut tenants = self.lock();
        let q = tenants.entry(tenant.to_string()).or_default();
        q.cap = cap;
        q.startable()
    }

    /// Job `id` of `tenant` is submitted.
    pub fn admit(&self, tenant: &str, id: &str, job: T) -> Admission<T> {
        let mut tenants = self.lock();
        let q = tenants.entry(tenant.to_string()).or_default();
        if q.has_room() && q.waiting.is_empty() {
            q.running += 1;
            return Admission::Start(job);
        }
        q.waiting.push_back((id.to_string(), job));
        Admission::Queued {
            ahead: q.waiting.len() - 1,
            running: q.running,
            cap: q.cap.unwrap_or(u32::MAX),
        }
    }

    /// A running job of `tenant` ended; returns the waiting jobs that may start now.
    pub fn ended(&self, tenant: &str) -> Vec<(String, T)> {
        let mut tenants = self.lock();
        let Some(q) = tenants.get_mut(tenant) else { return Vec::new() };
        q.running = q.running.saturating_sub(1);
        q.startable()
    }

    /// Take waiting job `id` out (it was cancelled); `None` if it is not waiting.
    pub fn remove(&self, id: &str) -> Option<T> {
        let mut tenants = self.lock();
        for q in tenants.values_mut() {
            if let Some(at) = q.waiting.iter().position(|(j, _)| j == id) {
                return q.waiting.remove(at).map(|(_, job)| job);
            }
        }
        None
    }

    /// Jobs of `tenant` running (as the queue counts them) and waiting.
    pub fn counts(&self, tenant: &str) -> (u32, usize) {
        self.lock().get(tenant).map_or((0, 0), |q| (q.running, q.waiting.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_beyond_the_cap_wait_in_order_and_start_as_others_end() {
        let q = JobQueue::default();
        assert!(q.set_cap("acme", Some(1)).is_empty());
        assert_eq!(q.admit("acme", "j1", 1), Admission::Start(1));
        assert_eq!(q.admit("acme", "j2", 2), Admission::Queued { ahead: 0, running: 1, cap: 1 });
        assert_eq!(q.admit("acme", "j3", 3), Admission::Queued { ahead: 1, running: 1, cap: 1 });
        // Another tenant is not held up.
        assert_eq!(q.admit("globex", "g1", 9), Admission::Start(9));
        assert_eq!(q.ended("acme"), vec![("j2".to_string(), 2)]);
        assert_eq!(q.counts("acme"), (1, 1));
        assert_eq!(q.ended("acme"), vec![("j3".to_string(), 3)]);
        assert_eq!(q.ended("acme"), vec![]);
        assert_eq!(q.counts("acme"), (0, 0));
    }

    #[test]
    fn a_cancelled_waiting_job_leaves_the_queue_and_a_raised_cap_starts_waiting_ones() {
        let q = JobQueue::default();
        q.set_cap("acme", Some(1));
        assert_eq!(q.admit("acme", "j1", 1), Admission::Start(1));
        assert!(matches!(q.admit("acme", "j2", 2), Admission::Queued { .. }));
        assert!(matches!(q.admit("acme", "j3", 3), Admission::Queued { .. }));
        assert_eq!(q.remove("j2"), Some(2));
        assert_eq!(q.remove("j2"), None);
        assert_eq!(q.set_cap("acme", None), vec![("j3".to_string(), 3)]);
        assert_eq!(q.counts("acme"), (2, 0));
        // At the cap again, a new job waits until one ends.
        q.set_cap("acme", Some(2));
        assert!(matches!(q.admit("acme", "j4", 4), Admission::Queued { ahead: 0, .. }));
        assert_eq!(q.ended("acme"), vec![("j4".to_string(), 4)]);
    }
}
