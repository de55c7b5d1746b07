//! Modules and jobs on the coordinator.
//!
//! Modules are content-addressed: stored once under `state-dir/modules/<sha256>.wasm` (the hash is
//! checked on upload), kept in memory, compiled once for drivers. A job is a driver running on a
//! thread of its own, whose actions run on the cluster through a [`RemoteExecutor`]; everything
//! it prints and how it ends is kept as a list of [`JobEvent`]s that followers replay and then
//! wait on.

use super::Shared;
use super::remote::RemoteExecutor;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use weft::plan::ActionReply;
use weft_runtime::JobModule;
use weft_runtime::capture::CapturedOutput;
use weft_wire::pki::sha256_hex;
use weft_wire::protocol::{JobEvent, JobInfo};

/// Content-addressed module storage.
pub(crate) struct ModuleStore {
    dir: PathBuf,
    bytes: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    compiled: Mutex<HashMap<String, JobModule>>,
}

impl ModuleStore {
    pub(crate) fn new(dir: PathBuf) -> std::io::Result<ModuleStore> {
        std::fs::create_dir_all(&dir)?;
        Ok(ModuleStore { dir, bytes: Default::default(), compiled: Default::default() })
    }

    fn path(&self, hash: &str) -> Option<PathBuf> {
        // Only well-formed hashes become file names.
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.join(format!("{hash}.wasm")))
    }

    pub(crate) fn get(&self, hash: &str) -> Option<Arc<Vec<u8>>> {
        if let Some(b) = super::lock(&self.bytes).get(hash) {
            return Some(b.clone());
        }
        let bytes = Arc::new(std::fs::read(self.path(hash)?).ok()?);
        super::lock(&self.bytes).insert(hash.to_string(), bytes.clone());
        Some(bytes)
    }

    /// Store `wasm` if it hashes to `hash`.
    pub(crate) fn put(&self, hash: &str, wasm: Vec<u8>) -> Result<(), String> {
        let actual = sha256_hex(&wasm);
        if actual != hash {
            return Err(format!("the module's SHA-256 is {actual}, not {hash}"));
        }
        let path = self.path(hash).ok_or("bad module hash")?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &wasm)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot store the module: {e}"))?;
        super::lock(&self.bytes).insert(hash.to_string(), Arc::new(wasm));
        Ok(())
    }

    /// The module compiled for drivers (once per module).
    pub(crate) fn compiled(&self, shared: &Shared, hash: &str) -> Result<JobModule, String> {
        if let Some(m) = super::lock(&self.compiled).get(hash) {
            return Ok(m.clone());
        }
        let wasm =
            self.get(hash).ok_or_else(|| format!("unknown module {hash}; upload it first"))?;
        let module = shared.engine.compile(&wasm).map_err(|e| e.to_string())?;
        super::lock(&self.compiled).insert(hash.to_string(), module.clone());
        Ok(module)
    }
}

/// One job.
pub(crate) struct Job {
    pub(crate) id: String,
    module_hash: String,
    started: Instant,
    events: Mutex<Vec<JobEvent>>,
    pub(crate) notify: tokio::sync::Notify,
    cancelled: std::sync::atomic::AtomicBool,
}

/// What a cancelled job's actions fail with.
pub(crate) const CANCELLED: &str = "the job was cancelled";

impl Job {
    /// Ask the job to stop: its running action fails and no further action starts.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn push(&self, event: JobEvent) {
        super::lock(&self.events).push(event);
        self.notify.notify_waiters();
    }

    /// Events from index `from` on.
    pub(crate) fn events_from(&self, from: usize) -> Vec<JobEvent> {
        super::lock(&self.events).get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    pub(crate) fn info(&self) -> JobInfo {
        let events = super::lock(&self.events);
        let (state, error) = match events.last() {
            Some(JobEvent::Finished { exit_code: 0, .. }) => ("succeeded", None),
            Some(JobEvent::Finished { .. }) if self.is_cancelled() => {
                ("cancelled", Some(CANCELLED.to_string()))
            }
            Some(JobEvent::Finished { error, exit_code }) => (
                "failed",
                Some(error.clone().unwrap_or_else(|| format!("exit status {exit_code}"))),
            ),
            _ => ("running", None),
        };
        JobInfo {
            id: self.id.clone(),
            module_hash: self.module_hash.clone(),
            state: state.into(),
            error,
            age_secs: self.started.elapsed().as_secs(),
        }
    }
}

/// Writes a driver's output into its job's events.
struct EventWriter {
    job: Arc<Job>,
    stderr: bool,
}

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bytes = buf.to_vec();
        self.job.push(if self.stderr { JobEvent::Stderr(bytes) } else { JobEvent::Stdout(bytes) });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// All jobs since the coordinator started.
#[derive(Default)]
pub(crate) struct JobTable {
    next: Mutex<u64>,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl JobTable {
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Job>> {
        super::lock(&self.jobs).get(id).cloned()
    }

    pub(crate) fn list(&self) -> Vec<JobInfo> {
        let mut all: Vec<JobInfo> = super::lock(&self.jobs).values().map(|j| j.info()).collect();
        all.sort_by_key(|j| j.id.trim_start_matches("job-").parse::<u64>().unwrap_or(u64::MAX));
        all
    }

    fn create(&self, module_hash: &str) -> Arc<Job> {
        let n = {
            let mut next = super::lock(&self.next);
            *next += 1;
            *next
        };
        let job = Arc::new(Job {
            id: format!("job-{n}"),
            module_hash: module_hash.to_string(),
            started: Instant::now(),
            events: Mutex::new(Vec::new()),
            notify: tokio::sync::Notify::new(),
            cancelled: Default::default(),
        });
        super::lock(&self.jobs).insert(job.id.clone(), job.clone());
        job
    }
}

/// Start a job: compile (or reuse) the module, run its driver on a thread of its own.
pub(crate) fn submit(
    shared: &Arc<Shared>,
    hash: &str,
    args: Vec<String>,
) -> Result<String, String> {
    let module = shared.modules.compiled(shared, hash)?.with_policy(shared.policy.clone());
    let job = shared.jobs.create(hash);
    let id = job.id.clone();
    let shared = shared.clone();
    let hash = hash.to_string();
    std::thread::Builder::new()
        .name(format!("weft-driver-{id}"))
        .spawn(move || run_driver(shared, job, module, hash, args))
        .map_err(|e| format!("cannot start the driver: {e}"))?;
    Ok(id)
}

fn run_driver(
    shared: Arc<Shared>,
    job: Arc<Job>,
    module: JobModule,
    hash: String,
    args: Vec<String>,
) {
    tracing::info!(job = %job.id, module = %hash, "job started");
    let stdout =
        CapturedOutput::forward(0, Box::new(EventWriter { job: job.clone(), stderr: false }));
    let stderr =
        CapturedOutput::forward(0, Box::new(EventWriter { job: job.clone(), stderr: true }));
    let mut executor = RemoteExecutor::new(shared.clone(), job.clone(), hash);
    let this_job = job.clone();
    let data = shared.data.clone();
    let (handler, failure) = crate::action::driver_handler(move |request| {
        if this_job.is_cancelled() {
            return ActionReply::Failed(CANCELLED.into());
        }
        executor.next_action();
        let reply = crate::action::run_action(&mut executor, &data, None, request);
        executor.release_action();
        reply
    });
    let (exit_code, error) = match module.run_driver(&args, &stdout, &stderr, handler) {
        Ok(report) if report.exit_code == 0 => (0, None),
        Ok(report) => (report.exit_code, super::lock(&failure).take()),
        Err(e) => (1, Some(format!("the driver failed: {e}"))),
    };
    let (exit_code, error) = if job.is_cancelled() {
        (exit_code.max(1), Some(CANCELLED.to_string()))
    } else {
        (exit_code, error)
    };
    tracing::info!(job = %job.id, exit_code, "job finished");
    job.push(JobEvent::Finished { exit_code, error });
}
