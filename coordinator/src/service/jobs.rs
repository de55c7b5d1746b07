//! The job table behind a store interface, [`JobStore`], so that the in-memory table and the
//! state database's ([`crate::state::job_table::DbJobStore`], what the coordinator uses) are
//! interchangeable (Ballista's job-state trait).
//!
//! A [`JobRecord`] is what is worth keeping about a job: its module and arguments, its state and
//! error, when it was submitted, started and ended. What only matters while the coordinator runs
//! (its log, followers, the cancel flag) lives beside it in `live`. Job ids are unique across
//! restarts: the last one is kept in the state directory ([`IdSequence`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;
use weft_wire::protocol::{JobEvent, JobInfo};

/// Finished jobs the in-memory store keeps; older ones are forgotten.
pub const FINISHED_JOBS_KEPT: usize = 1000;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// It waits for its tenant's running-jobs cap.
    Queued,
    /// The driver runs.
    Running,
    /// The driver exited with 0.
    Succeeded,
    /// The driver failed or exited with another status.
    Failed,
    /// Someone cancelled it.
    Cancelled,
}

impl JobState {
    /// Whether the job has ended (it will not change again).
    pub fn is_over(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }

    /// The name `weft jobs` shows.
    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// What is kept about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id (`job-N`).
    pub id: String,
    /// The order it was created in.
    pub seq: u64,
    /// The tenant it runs for (`None`: submitted with the admin token).
    pub tenant: Option<String>,
    /// Its module.
    pub module_hash: String,
    /// The arguments of its `main`.
    pub args: Vec<String>,
    /// Where it is.
    pub state: JobState,
    /// Why it failed.
    pub error: Option<String>,
    /// Why it waits, while it is queued.
    #[serde(default)]
    pub waiting: Option<String>,
    /// When it was submitted.
    pub submitted: SystemTime,
    /// When it ended.
    pub ended: Option<SystemTime>,
    /// When it started and how far it got (as of its end; a running job's is live).
    #[serde(default)]
    pub progress: JobProgress,
}

/// How far a job got: when its driver and its first task started, the stages and tasks it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    /// When its driver started (after any wait in its tenant's queue).
    pub started: Option<SystemTime>,
    /// When its first task was launched.
    pub first_task: Option<SystemTime>,
    /// Stages completed.
    pub stages: u64,
    /// Tasks completed.
    pub tasks: u64,
}

impl JobRecord {
    /// As `weft jobs` lists it, at time `now`, with `progress` (the record's, or a running
    /// job's live one).
    pub fn info(&self, now: SystemTime, progress: JobProgress) -> JobInfo {
        let secs = |from: SystemTime, to: SystemTime| {
            to.duration_since(from).map(|d| d.as_secs()).unwrap_or(0)
        };
        let after = |t: Option<SystemTime>| {
            t.map(|t| t.duration_since(self.submitted).map_or(0, |d| d.as_millis() as u64))
        };
        let ran_from = progress.started.unwrap_or(self.submitted);
        JobInfo {
            id: self.id.clone(),
            tenant: self.tenant.clone().unwrap_or_else(|| "admin".into()),
            module_hash: self.module_hash.clone(),
            state: self.state.name().into(),
            error: self.error.clone(),
            waiting: self.waiting.clone(),
            age_secs: secs(self.submitted, now),
            run_secs: match (self.state, progress.started) {
                (JobState::Queued, _) => 0,
                _ => secs(ran_from, self.ended.unwrap_or(now)),
            },
            started_after_ms: after(progress.started),
            first_task_after_ms: after(progress.first_task),
            stages: progress.stages,
            tasks: progress.tasks,
        }
    }
}

/// Why the job store failed.
#[derive(Debug, thiserror::Error)]
#[error("job store: {0}")]
pub struct StoreError(pub String);

/// Where job records are kept.
pub trait JobStore: Send + Sync {
    /// A new job id, never handed out before (also across restarts), and its sequence number.
    fn next_id(&self) -> Result<(String, u64), StoreError>;
    /// Keep a new job.
    fn insert(&self, job: JobRecord) -> Result<(), StoreError>;
    /// Record how a job ended.
    fn finish(&self, id: &str, state: JobState, error: Option<String>) -> Result<(), StoreError>;
    /// Record how a job ended, how far it got, and the last of its log to keep (a store that
    /// keeps no logs drops it).
    fn finish_with_log(
        &self,
        id: &str,
        state: JobState,
        error: Option<String>,
        progress: JobProgress,
        log: Vec<JobEvent>,
    ) -> Result<(), StoreError>;
    /// The kept log of an ended job.
    fn saved_log(&self, _id: &str) -> Option<Vec<JobEvent>> {
        None
    }
    /// One job.
    fn get(&self, id: &str) -> Option<JobRecord>;
    /// Every job kept, oldest first.
    fn list(&self) -> Vec<JobRecord>;
}

/// Job ids that stay unique across restarts: the last number handed out is written to a file in
/// the state directory (atomically, before the id is used).
pub struct IdSequence {
    path: PathBuf,
    last: Mutex<u64>,
}

impl IdSequence {
    /// The sequence kept in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<IdSequence, StoreError> {
        let path = state_dir.join("job-sequence");
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|e| StoreError(format!("{} is not a number: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(StoreError(format!("{}: {e}", path.display()))),
        };
        Ok(IdSequence { path, last: Mutex::new(last) })
    }

    /// The next number (blocking: it writes a file).
    pub fn next(&self) -> Result<u64, StoreError> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let next = *last + 1;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, format!("{next}\n"))
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| StoreError(format!("{}: {e}", self.path.display())))?;
        *last = next;
        Ok(next)
    }
}

/// Job records in memory: at most [`FINISHED_JOBS_KEPT`] finished ones, all running ones.
pub struct MemoryJobStore {
    ids: IdSequence,
    jobs: Mutex<BTreeMap<u64, JobRecord>>,
    by_id: Mutex<std::collections::HashMap<String, u64>>,
}

impl MemoryJobStore {
    /// A store whose ids continue `ids`.
    pub fn new(ids: IdSequence) -> MemoryJobStore {
        MemoryJobStore { ids, jobs: Mutex::default(), by_id: Mutex::default() }
    }

    fn end(
        &self,
        id: &str,
        state: JobState,
        error: Option<String>,
        progress: Option<JobProgress>,
    ) -> Result<(), StoreError> {
        let seq = self.by_id.lock().unwrap_or_else(|p| p.into_inner()).get(id).copied();
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let job =
            seq.and_then(|s| jobs.get_mut(&s)).ok_or_else(|| StoreError(format!("no job {id}")))?;
        job.state = state;
        job.error = error;
        job.waiting = None;
        job.ended = Some(SystemTime::now());
        if let Some(progress) = progress {
            job.progress = progress;
        }
        self.evict(&mut jobs);
        Ok(())
    }

    fn evict(&self, jobs: &mut BTreeMap<u64, JobRecord>) {
        let finished = jobs.values().filter(|j| j.state.is_over()).count();
        let excess = finished.saturating_sub(FINISHED_JOBS_KEPT);
        let old: Vec<u64> = jobs
            .iter()
            .filter(|(_, j)| j.state.is_over())
            .take(excess)
            .map(|(seq, _)| *seq)
            .collect();
        let mut by_id = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        for seq in old {
            if let Some(job) = jobs.remove(&seq) {
                by_id.remove(&job.id);
            }
        }
    }
}

impl JobStore for MemoryJobStore {
    fn next_id(&self) -> Result<(String, u64), StoreError> {
        let n = self.ids.next()?;
        Ok((format!("job-{n}"), n))
    }

    fn insert(&self, job: JobRecord) -> Result<(), StoreError> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).insert(job.id.clone(), job.seq);
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).insert(job.seq, job);
        Ok(())
    }

    fn finish(&self, id: &str, state: JobState, error: Option<String>) -> Result<(), StoreError> {
        self.end(id, state, error, None)
    }

    fn finish_with_log(
        &self,
        id: &str,
        state: JobState,
        error: Option<String>,
        progress: JobProgress,
        _log: Vec<JobEvent>,
    ) -> Result<(), StoreError> {
        self.end(id, state, error, Some(progress))
    }

    fn get(&self, id: &str) -> Option<JobRecord> {
        let seq = *self.by_id.lock().unwrap_or_else(|p| p.into_inner()).get(id)?;
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).get(&seq).cloned()
    }

    fn list(&self) -> Vec<JobRecord> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(store: &MemoryJobStore) -> String {
        let (id, seq) = store.next_id().unwrap();
        store
            .insert(JobRecord {
                id: id.clone(),
                seq,
                tenant: None,
                module_hash: "m".into(),
                args: vec![],
                state: JobState::Running,
                error: None,
                waiting: None,
                submitted: SystemTime::now(),
                ended: None,
                progress: Default::default(),
            })
            .unwrap();
        id
    }

    #[test]
    fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = MemoryJobStore::new(IdSequence::open(dir.path()).unwrap());
        assert_eq!(record(&first), "job-1");
        assert_eq!(record(&first), "job-2");
        drop(first);
        let again = MemoryJobStore::new(IdSequence::open(dir.path()).unwrap());
        assert_eq!(record(&again), "job-3", "a restarted coordinator reused an id");
        std::fs::write(dir.path().join("job-sequence"), "garbage").unwrap();
        assert!(IdSequence::open(dir.path()).is_err());
    }

    #[test]
    fn finished_jobs_beyond_the_bound_are_forgotten_running_ones_never() {
        // Regression: every finished job was kept for the life of the coordinator.
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryJobStore::new(IdSequence::open(dir.path()).unwrap());
        let running = record(&store);
        for _ in 0..FINISHED_JOBS_KEPT + 50 {
            let id = record(&store);
            store.finish(&id, JobState::Succeeded, None).unwrap();
        }
        let kept = store.list();
        assert_eq!(kept.len(), FINISHED_JOBS_KEPT + 1);
        assert_eq!(kept[0].id, running, "the running job is kept");
        assert!(store.get("job-2").is_none(), "the oldest finished job is gone");
        assert_eq!(store.get(&running).unwrap().state, JobState::Running);
        let last = format!("job-{}", FINISHED_JOBS_KEPT + 51);
        assert_eq!(store.get(&last).unwrap().state, JobState::Succeeded);
    }
}
