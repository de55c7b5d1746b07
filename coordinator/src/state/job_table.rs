//! The job history in the state database: [`DbJobStore`], the durable [`JobStore`].
//!
//! Records are keyed by their sequence number (`job-N` is job N), so the history lists in
//! submission order without an index. When a job ends, its record and the last MiB of its log
//! (the events the live log still holds) are written in one transaction. At most
//! [`FINISHED_JOBS_KEPT`] ended jobs are kept, the oldest going first with their logs; running
//! jobs are always kept. A job that was running when the coordinator stopped cannot be finished
//! by anyone: opening the store marks it failed, "coordinator restarted".

use super::{META, StateDb, StateError, decode, encode};
use crate::service::jobs::{
    FINISHED_JOBS_KEPT, JobProgress, JobRecord, JobState, JobStore, StoreError,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;
use weft_wire::protocol::JobEvent;

pub(super) const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
pub(super) const JOB_LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("job_logs");
const SEQUENCE: &str = "job_sequence";

/// The error of a job that was running when the coordinator stopped.
pub const RESTARTED: &str = "coordinator restarted";

/// The job history, in the state database.
pub struct DbJobStore {
    db: StateDb,
    /// The sequence numbers of the ended jobs kept, so that ending a job need not read the
    /// others to find which go.
    ended: Mutex<BTreeSet<u64>>,
}

/// How a job ended, as [`DbJobStore::try_finish`] records it.
struct Ending {
    state: JobState,
    error: Option<String>,
    progress: Option<JobProgress>,
    log: Option<Vec<JobEvent>>,
}

fn store_err(e: StateError) -> StoreError {
    StoreError(e.to_string())
}

fn seq_of(id: &str) -> Option<u64> {
    id.strip_prefix("job-")?.parse().ok()
}

impl DbJobStore {
    /// The history in `db` (blocking). Jobs left running by a previous coordinator are marked
    /// failed. `legacy_state_dir`: where an older coordinator kept its last job number in a
    /// `job-sequence` file, which ids continue from if the database has none yet.
    pub fn open(db: StateDb, legacy_state_dir: Option<&Path>) -> Result<DbJobStore, StateError> {
        let legacy = legacy_state_dir
            .map(|d| d.join("job-sequence"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| t.trim().parse::<u64>().ok());
        let txn = db.db().begin_write()?;
        let mut restarted = 0;
        // Every job is over once the stale ones are marked.
        let mut ended = BTreeSet::new();
        {
            let mut meta = txn.open_table(META)?;
            if meta.get(SEQUENCE)?.is_none() {
                meta.insert(SEQUENCE, legacy.unwrap_or(0))?;
            }
            let mut jobs = txn.open_table(JOBS)?;
            let mut stale = Vec::new();
            for entry in jobs.iter()? {
                let (seq, bytes) = entry?;
                let record: JobRecord = decode(bytes.value(), "job record")?;
                ended.insert(seq.value());
                if !record.state.is_over() {
                    stale.push((seq.value(), record));
                }
            }
            let now = SystemTime::now();
            for (seq, mut record) in stale {
                record.state = JobState::Failed;
                record.error = Some(RESTARTED.into());
                record.waiting = None;
                record.ended = Some(now);
                jobs.insert(seq, encode(&record).as_slice())?;
                restarted += 1;
            }
        }
        txn.commit()?;
        if restarted > 0 {
            tracing::warn!(
                jobs = restarted,
                "jobs that were running are marked failed: {RESTARTED}"
            );
        }
        Ok(DbJobStore { db, ended: Mutex::new(ended) })
    }

    fn try_next_id(&self) -> Result<(String, u64), StateError> {
        let txn = self.db.db().begin_write()?;
        let next = {
            let mut meta = txn.open_table(META)?;
            let next = meta.get(SEQUENCE)?.map_or(0, |v| v.value()) + 1;
            meta.insert(SEQUENCE, next)?;
            next
        };
        txn.commit()?;
        Ok((format!("job-{next}"), next))
    }

    fn try_insert(&self, job: &JobRecord) -> Result<(), StateError> {
        let txn = self.db.db().begin_write()?;
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        txn.open_table(JOBS)?.insert(job.seq, encode(job).as_slice())?;
        txn.commit()?;
        if job.state.is_over() {
            ended.insert(job.seq);
        }
        Ok(())
    }

    fn try_finish(&self, id: &str, ending: Ending) -> Result<bool, StateError> {
        let Some(seq) = seq_of(id) else { return Ok(false) };
        // Held through the transaction, so that the list matches what is committed.
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        let txn = self.db.db().begin_write()?;
        let mut dropped = 0;
        {
            let mut jobs = txn.open_table(JOBS)?;
            let Some(mut record) =
                jobs.get(seq)?.map(|b| decode::<JobRecord>(b.value(), "job record")).transpose()?
            else {
                return Ok(false);
            };
            let already_over = record.state.is_over();
            record.state = ending.state;
            record.error = ending.error;
            record.waiting = None;
            record.ended = Some(SystemTime::now());
            if let Some(progress) = ending.progress {
                record.progress = progress;
            }
            jobs.insert(seq, encode(&record).as_slice())?;
            let mut logs = txn.open_table(JOB_LOGS)?;
            if let Some(events) = ending.log {
                logs.insert(seq, encode(&events).as_slice())?;
            }
            // The oldest ended jobs beyond the bound go, with their logs.
            if !already_over {
                ended.insert(seq);
            }
            while ended.len() > FINISHED_JOBS_KEPT + dropped {
                let Some(&old) = ended.iter().nth(dropped) else { break };
                jobs.remove(old)?;
                logs.remove(old)?;
                dropped += 1;
            }
        }
        txn.commit()?;
        for _ in 0..dropped {
            ended.pop_first();
        }
        Ok(true)
    }

    fn try_get(&self, id: &str) -> Result<Option<JobRecord>, StateError> {
        let Some(seq) = seq_of(id) else { return Ok(None) };
        let txn = self.db.db().begin_read()?;
        let jobs = txn.open_table(JOBS)?;
        jobs.get(seq)?.map(|b| decode(b.value(), "job record")).transpose()
    }

    fn try_list(&self) -> Result<Vec<JobRecord>, StateError> {
        let txn = self.db.db().begin_read()?;
        let jobs = txn.open_table(JOBS)?;
        let mut out = Vec::new();
        for entry in jobs.iter()? {
            let (_, bytes) = entry?;
            out.push(decode(bytes.value(), "job record")?);
        }
        Ok(out)
    }

    fn try_log(&self, id: &str) -> Result<Option<Vec<JobEvent>>, StateError> {
        let Some(seq) = seq_of(id) else { return Ok(None) };
        let txn = self.db.db().begin_read()?;
        let logs = txn.open_table(JOB_LOGS)?;
        logs.get(seq)?.map(|b| decode(b.value(), "job log")).transpose()
    }
}

/// Reads that fail are logged and answered as "nothing there": the caller then says "no such
/// job", and the log says why.
fn or_log<T>(result: Result<Option<T>, StateError>) -> Option<T> {
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read the job history");
        None
    })
}

impl JobStore for DbJobStore {
    fn next_id(&self) -> Result<(String, u64), StoreError> {
        self.try_next_id().map_err(store_err)
    }

    fn insert(&self, job: JobRecord) -> Result<(), StoreError> {
        self.try_insert(&job).map_err(store_err)
    }

    fn finish(&self, id: &str, state: JobState, error: Option<String>) -> Result<(), StoreError> {
        let ending = Ending { state, error, progress: None, log: None };
        match self.try_finish(id, ending).map_err(store_err)? {
            true => Ok(()),
            false => Err(StoreError(format!("no job {id}"))),
        }
    }

    fn finish_with_log(
        &self,
        id: &str,
        state: JobState,
        error: Option<String>,
        progress: JobProgress,
        log: Vec<JobEvent>,
    ) -> Result<(), StoreError> {
        let ending = Ending { state, error, progress: Some(progress), log: Some(log) };
        match self.try_finish(id, ending).map_err(store_err)? {
            true => Ok(()),
            false => Err(StoreError(format!("no job {id}"))),
        }
    }

    fn get(&self, id: &str) -> Option<JobRecord> {
        or_log(self.try_get(id))
    }

    fn list(&self) -> Vec<JobRecord> {
        self.try_list().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the job history");
            Vec::new()
        })
    }

    fn saved_log(&self, id: &str) -> Option<Vec<JobEvent>> {
        or_log(self.try_log(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(store: &DbJobStore, tenant: Option<&str>) -> String {
        let (id, seq) = store.next_id().unwrap();
        store
            .insert(JobRecord {
                id: id.clone(),
                seq,
                tenant: tenant.map(str::to_string),
                module_hash: "m".into(),
                args: vec!["a".into()],
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
    fn the_history_and_logs_survive_a_restart_and_running_jobs_become_failed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = DbJobStore::open(StateDb::open(dir.path()).unwrap(), None).unwrap();
            let done = record(&store, Some("acme"));
            let log = vec![JobEvent::Stdout(b"hello\n".to_vec())];
            let progress = JobProgress {
                started: Some(SystemTime::now()),
                first_task: Some(SystemTime::now()),
                stages: 2,
                tasks: 7,
            };
            store.finish_with_log(&done, JobState::Succeeded, None, progress, log).unwrap();
            record(&store, None);
        }
        let store = DbJobStore::open(StateDb::open(dir.path()).unwrap(), None).unwrap();
        let jobs = store.list();
        assert_eq!(jobs.len(), 2);
        assert_eq!((jobs[0].id.as_str(), jobs[0].state), ("job-1", JobState::Succeeded));
        assert_eq!(jobs[0].tenant.as_deref(), Some("acme"));
        assert_eq!(jobs[0].args, ["a"]);
        assert_eq!((jobs[0].progress.stages, jobs[0].progress.tasks), (2, 7));
        assert!(jobs[0].progress.started.is_some() && jobs[0].progress.first_task.is_some());
        assert_eq!(store.saved_log("job-1"), Some(vec![JobEvent::Stdout(b"hello\n".to_vec())]));
        assert_eq!((jobs[1].state, jobs[1].error.as_deref()), (JobState::Failed, Some(RESTARTED)));
        assert!(jobs[1].ended.is_some());
        assert_eq!(record(&store, None), "job-3", "ids continue across restarts");
    }

    #[test]
    fn ids_continue_from_an_older_coordinators_sequence_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("job-sequence"), "41\n").unwrap();
        let store = DbJobStore::open(StateDb::open(dir.path()).unwrap(), Some(dir.path())).unwrap();
        assert_eq!(record(&store, None), "job-42");
    }

    #[test]
    fn a_second_coordinator_on_the_same_state_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = StateDb::open(dir.path()).unwrap();
        let e = StateDb::open(dir.path()).err().expect("refused").to_string();
        assert!(e.contains("in use by another process"), "{e}");
    }

    #[test]
    fn ended_jobs_beyond_the_bound_go_with_their_logs_running_ones_stay() {
        let store = DbJobStore::open(StateDb::in_memory().unwrap(), None).unwrap();
        let running = record(&store, None);
        for _ in 0..FINISHED_JOBS_KEPT + 5 {
            let id = record(&store, None);
            let progress = JobProgress::default();
            store
                .finish_with_log(&id, JobState::Failed, Some("x".into()), progress, vec![])
                .unwrap();
        }
        let kept = store.list();
        assert_eq!(kept.len(), FINISHED_JOBS_KEPT + 1);
        assert_eq!(kept[0].id, running);
        assert!(store.get("job-2").is_none() && store.saved_log("job-2").is_none());
        assert!(store.saved_log(&format!("job-{}", FINISHED_JOBS_KEPT + 6)).is_some());
        assert!(store.finish("job-999999", JobState::Failed, None).is_err());
        assert!(store.get("not-a-job").is_none());
    }

    #[test]
    fn the_bound_holds_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = DbJobStore::open(StateDb::open(dir.path()).unwrap(), None).unwrap();
            for _ in 0..FINISHED_JOBS_KEPT {
                let id = record(&store, None);
                store.finish(&id, JobState::Succeeded, None).unwrap();
            }
            // Left running: marked failed by the next coordinator, which then counts it.
            record(&store, None);
        }
        let store = DbJobStore::open(StateDb::open(dir.path()).unwrap(), None).unwrap();
        assert_eq!(store.list().len(), FINISHED_JOBS_KEPT + 1);
        let id = record(&store, None);
        store.finish(&id, JobState::Succeeded, None).unwrap();
        let kept = store.list();
        assert_eq!(kept.len(), FINISHED_JOBS_KEPT);
        assert_eq!(kept[0].id, "job-3", "the two oldest went");
        // Finishing a job again does not count it twice.
        store.finish(&id, JobState::Failed, None).unwrap();
        assert_eq!(store.list().len(), FINISHED_JOBS_KEPT);
    }
}
