//! Who may take the next free slot: hard caps per tenant, weighted fair share between tenants,
//! max-min fairness between the jobs of one tenant. A pure state machine (time is passed in),
//! kept by the [`SlotLedger`](crate::slots::SlotLedger), which adds the nodes.
//!
//! Design choice (Spark's FAIR pools, across jobs and tenants, with hard caps): a job asks for a
//! slot and is refused while
//! 1. its tenant runs as many tasks as its cap (`--slots`) allows; such a job does not count as
//!    waiting, since it could not use a slot anyway; or
//! 2. a job of another tenant waits whose tenant has the smaller weighted share (tasks running ÷
//!    weight, compared as `running_u × weight_t < running_t × weight_u`) and is under its cap;
//!    or
//! 3. a job of the same tenant waits that runs fewer tasks.
//!
//! No task is ever preempted: tasks are short, so a tenant that arrives at a full cluster gets
//! the next slot that frees up, one task duration at most. A job counts as waiting from a
//! refusal until it takes a slot, says it no longer wants one, or has not asked again for
//! [`WAIT_EXPIRY`]: a job that stopped asking must not hold the others back.
//!
//! Jobs of no tenant (the admin's, the embedded engine's) share the tenant `""`, of weight 1
//! and no cap. The slot-seconds each tenant used are summed as it goes, so that the shares it
//! got can be checked.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a refused job counts as waiting without asking again.
pub const WAIT_EXPIRY: Duration = Duration::from_secs(2);

/// Why a job may not take a slot now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its tenant runs as many tasks as its cap allows.
    Capped,
    /// Someone with a smaller share waits for the slot.
    Yield,
}

#[derive(Debug, Clone)]
struct Tenant {
    weight: u32,
    cap: Option<u32>,
    running: u32,
    peak: u32,
    /// Slot-nanoseconds used until `since`.
    used_nanos: u128,
    since: Option<Instant>,
}

impl Default for Tenant {
    fn default() -> Self {
        Tenant { weight: 1, cap: None, running: 0, peak: 0, used_nanos: 0, since: None }
    }
}

impl Tenant {
    fn capped(&self) -> bool {
        self.cap.is_some_and(|c| self.running >= c)
    }

    /// Account the time since the last change, at `running` tasks.
    fn advance(&mut self, now: Instant) {
        if let Some(since) = self.since {
            let dt = now.saturating_duration_since(since).as_nanos();
            self.used_nanos += dt * u128::from(self.running);
        }
        self.since = Some(now);
    }
}

#[derive(Debug, Default, Clone)]
struct Job {
    running: u32,
    waiting_since: Option<Instant>,
}

/// The shares of tenants and jobs.
#[derive(Debug, Default)]
pub struct Shares {
    tenants: HashMap<String, Tenant>,
    /// Each job's tenant, while the job lives.
    tenant_of: HashMap<String, String>,
    jobs: HashMap<String, Job>,
}

fn fresh(since: Option<Instant>, now: Instant) -> bool {
    since.is_some_and(|t| now.saturating_duration_since(t) < WAIT_EXPIRY)
}

impl Shares {
    /// A tenant's weight (at least 1) and cap on running tasks.
    pub fn set_tenant(&mut self, tenant: &str, weight: u32, cap: Option<u32>) {
        let t = self.tenants.entry(tenant.to_string()).or_default();
        t.weight = weight.max(1);
        t.cap = cap;
    }

    /// `job` runs for `tenant` (until [`forget_job`](Self::forget_job)).
    pub fn set_job_tenant(&mut self, job: &str, tenant: &str) {
        self.tenant_of.insert(job.to_string(), tenant.to_string());
        self.tenants.entry(tenant.to_string()).or_default();
    }

    /// `job` ended: it no longer belongs to a tenant.
    pub fn forget_job(&mut self, job: &str) {
        self.tenant_of.remove(job);
    }

    fn tenant_name(&self, job: &str) -> &str {
        self.tenant_of.get(job).map_or("", String::as_str)
    }

    /// Whether `job` may take a free slot at `now`.
    pub fn may_take(&self, job: &str, now: Instant) -> Result<(), Refusal> {
        let name = self.tenant_name(job);
        let default = Tenant::default();
        let mine = self.tenants.get(name).unwrap_or(&default);
        if mine.capped() {
            return Err(Refusal::Capped);
        }
        let my_running = self.jobs.get(job).map_or(0, |j| j.running);
        for (other, share) in &self.jobs {
            if other == job || !fresh(share.waiting_since, now) {
                continue;
            }
            let their_name = self.tenant_name(other);
            if their_name == name {
                if share.running < my_running {
                    return Err(Refusal::Yield);
                }
                continue;
            }
            let theirs = self.tenants.get(their_name).unwrap_or(&default);
            let poorer = u64::from(theirs.running) * u64::from(mine.weight)
                < u64::from(mine.running) * u64::from(theirs.weight);
            if poorer && !theirs.capped() {
                return Err(Refusal::Yield);
            }
        }
        Ok(())
    }

    /// `job` took a slot at `now`.
    pub fn took(&mut self, job: &str, now: Instant) {
        let name = self.tenant_name(job).to_string();
        let share = self.jobs.entry(job.to_string()).or_default();
        share.running += 1;
        share.waiting_since = None;
        let t = self.tenants.entry(name).or_default();
        t.advance(now);
        t.running += 1;
        t.peak = t.peak.max(t.running);
    }

    /// `job` was refused at `now` for `why`: unless capped, it now waits (the mark is renewed at
    /// every refusal, so it expires only once the job stops asking).
    pub fn refused(&mut self, job: &str, why: Refusal, now: Instant) {
        let share = self.jobs.entry(job.to_string()).or_default();
        share.waiting_since = match why {
            Refusal::Yield => Some(now),
            Refusal::Capped => None,
        };
        self.forget_idle(job);
    }

    /// A task of `job` ended (or never started) at `now`.
    pub fn gave_back(&mut self, job: &str, now: Instant) {
        let name = self.tenant_name(job).to_string();
        if let Some(share) = self.jobs.get_mut(job) {
            share.running = share.running.saturating_sub(1);
        }
        if let Some(t) = self.tenants.get_mut(&name) {
            t.advance(now);
            t.running = t.running.saturating_sub(1);
        }
        self.forget_idle(job);
    }

    /// `job` does not want a slot now.
    pub fn stop_waiting(&mut self, job: &str) {
        if let Some(share) = self.jobs.get_mut(job) {
            share.waiting_since = None;
        }
        self.forget_idle(job);
    }

    fn forget_idle(&mut self, job: &str) {
        if self.jobs.get(job).is_some_and(|s| s.running == 0 && s.waiting_since.is_none()) {
            self.jobs.remove(job);
        }
    }

    /// Tasks `job` runs now.
    pub fn running(&self, job: &str) -> u32 {
        self.jobs.get(job).map_or(0, |j| j.running)
    }

    /// A tenant's tasks running now, the most it ever ran at once, and the slot-seconds it used
    /// until `now`.
    pub fn tenant_usage(&self, tenant: &str, now: Instant) -> (u32, u32, f64) {
        let Some(t) = self.tenants.get(tenant) else { return (0, 0, 0.0) };
        let mut t = t.clone();
        t.advance(now);
        (t.running, t.peak, t.used_nanos as f64 / 1e9)
    }
}

#[cfg(test)]
#[path = "fair_share_tests.rs"]
mod tests;
