//! What the coordinator holds about a job while it runs and for a while after: its log, which
//! followers replay and then wait on, and its cancel flag.
//!
//! A job's log is bounded ([`LOG_CAP`] bytes): a driver or task that prints without end costs the
//! coordinator that much and no more. Past the cap the oldest events go; a follower that asks for
//! events that went is told how many it missed. The event that ends the job is never dropped.

use super::jobs::JobProgress;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use weft_wire::protocol::JobEvent;

/// Bytes of events kept per job.
pub const LOG_CAP: usize = 1 << 20;

/// Jobs whose log is kept after they ended.
pub const ENDED_LOGS_KEPT: usize = 1000;

/// Bytes an event is charged for beyond its text (what keeping it costs).
const EVENT_OVERHEAD: usize = 64;

fn size(event: &JobEvent) -> usize {
    EVENT_OVERHEAD
        + match event {
            JobEvent::Stdout(b) | JobEvent::Stderr(b) => b.len(),
            JobEvent::Progress(s) => s.len(),
            JobEvent::Finished { error, .. } => error.as_ref().map_or(0, String::len),
        }
}

/// A job's events, numbered from 0, the oldest dropped past a cap.
#[derive(Debug)]
pub struct JobLog {
    /// Number of the first event kept.
    first: u64,
    events: VecDeque<JobEvent>,
    bytes: usize,
    cap: usize,
}

impl JobLog {
    /// A log keeping about `cap` bytes.
    pub fn new(cap: usize) -> JobLog {
        JobLog { first: 0, events: VecDeque::new(), bytes: 0, cap }
    }

    /// Add an event, dropping the oldest past the cap (never the last).
    pub fn push(&mut self, event: JobEvent) {
        self.bytes += size(&event);
        self.events.push_back(event);
        while self.bytes > self.cap && self.events.len() > 1 {
            let old = self.events.pop_front().expect("more than one");
            self.bytes -= size(&old);
            self.first += 1;
        }
    }

    /// Events from number `from` on, the number to ask for next, and how many events between
    /// `from` and the first kept were dropped.
    pub fn since(&self, from: u64) -> (Vec<JobEvent>, u64, u64) {
        let skipped = self.first.saturating_sub(from);
        let start = from.max(self.first);
        let events: Vec<JobEvent> =
            self.events.iter().skip((start - self.first) as usize).cloned().collect();
        let next = start + events.len() as u64;
        (events, next, skipped)
    }

    /// Whether the job's end is in the log.
    pub fn ended(&self) -> bool {
        matches!(self.events.back(), Some(JobEvent::Finished { .. }))
    }
}

/// One job as the coordinator holds it while it runs.
pub struct LiveJob {
    /// Its id.
    pub id: String,
    log: Mutex<JobLog>,
    /// Woken whenever an event is added.
    pub notify: tokio::sync::Notify,
    cancelled: AtomicBool,
    /// Its broadcast values, which its nodes fetch.
    pub broadcasts: std::sync::Arc<crate::broadcasts::BroadcastStore>,
    progress: Mutex<JobProgress>,
}

impl LiveJob {
    /// A job just submitted.
    pub fn new(id: &str) -> LiveJob {
        LiveJob {
            id: id.to_string(),
            log: Mutex::new(JobLog::new(LOG_CAP)),
            notify: tokio::sync::Notify::new(),
            cancelled: AtomicBool::new(false),
            broadcasts: Default::default(),
            progress: Mutex::default(),
        }
    }

    /// How far it got so far.
    pub fn progress(&self) -> JobProgress {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its driver starts now.
    pub fn driver_started(&self) {
        self.progress.lock().unwrap_or_else(|p| p.into_inner()).started = Some(SystemTime::now());
    }

    /// One of its tasks is launched now.
    pub fn task_launched(&self) {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        progress.first_task.get_or_insert_with(SystemTime::now);
    }

    /// One of its stages completed.
    pub fn stage_done(&self) {
        self.progress.lock().unwrap_or_else(|p| p.into_inner()).stages += 1;
    }

    /// One of its tasks completed.
    pub fn task_done(&self) {
        self.progress.lock().unwrap_or_else(|p| p.into_inner()).tasks += 1;
    }

    /// Add an event and wake followers.
    pub fn push(&self, event: JobEvent) {
        self.log().push(event);
        self.notify.notify_waiters();
    }

    /// The log.
    pub fn log(&self) -> MutexGuard<'_, JobLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ask the job to stop: its running action fails and no further action starts.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether someone asked it to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// Every job held, running or recently ended.
#[derive(Default)]
pub struct LiveJobs {
    jobs: Mutex<HashMap<String, Arc<LiveJob>>>,
    /// Ended jobs, oldest first.
    ended: Mutex<VecDeque<String>>,
}

impl LiveJobs {
    /// Hold a new job.
    pub fn add(&self, id: &str) -> Arc<LiveJob> {
        let job = Arc::new(LiveJob::new(id));
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), job.clone());
        job
    }

    /// A job, if it is held.
    pub fn get(&self, id: &str) -> Option<Arc<LiveJob>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// A job ended: keep its log for followers, up to [`ENDED_LOGS_KEPT`] ended jobs.
    pub fn ended(&self, id: &str) {
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        ended.push_back(id.to_string());
        while ended.len() > ENDED_LOGS_KEPT {
            if let Some(old) = ended.pop_front() {
                self.jobs.lock().unwrap_or_else(|p| p.into_inner()).remove(&old);
            }
        }
    }

    /// Jobs held.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chatty_job_s_log_stays_within_its_cap_and_followers_learn_what_they_missed() {
        // Regression: every byte a driver printed was kept for the life of the coordinator.
        let mut log = JobLog::new(2000);
        for i in 0..500 {
            log.push(JobEvent::Stdout(format!("line {i:04}\n").into_bytes()));
        }
        log.push(JobEvent::Finished { exit_code: 0, error: None });
        let (events, next, skipped) = log.since(0);
        let kept: usize = events.iter().map(size).sum();
        assert!(kept <= 2000, "{kept} bytes kept");
        assert!(skipped > 0);
        assert_eq!(next, 501);
        assert_eq!(events.last(), Some(&JobEvent::Finished { exit_code: 0, error: None }));
        assert!(log.ended());
        // A follower that is up to date gets nothing new, and nothing is reported missed.
        assert_eq!(log.since(next), (vec![], next, 0));
    }

    #[test]
    fn the_end_of_a_job_is_never_dropped_even_when_it_alone_is_over_the_cap() {
        let mut log = JobLog::new(10);
        log.push(JobEvent::Stdout(vec![b'x'; 100]));
        let error = Some("e".repeat(100));
        log.push(JobEvent::Finished { exit_code: 1, error: error.clone() });
        let (events, _, skipped) = log.since(0);
        assert_eq!((events, skipped), (vec![JobEvent::Finished { exit_code: 1, error }], 1));
    }

    #[test]
    fn ended_jobs_beyond_the_bound_are_let_go() {
        let jobs = LiveJobs::default();
        for i in 0..ENDED_LOGS_KEPT + 5 {
            let id = format!("job-{i}");
            jobs.add(&id);
            jobs.ended(&id);
        }
        jobs.add("running");
        assert_eq!(jobs.held(), ENDED_LOGS_KEPT + 1);
        assert!(jobs.get("job-0").is_none() && jobs.get("running").is_some());
    }
}
