//! A cluster job's driver, on a thread of its own: its output and its actions' progress become
//! the job's log, its actions run on the cluster through a [`RemoteExecutor`], and how it ends
//! is recorded in the job table.

use super::Principal;
use super::executor::RemoteExecutor;
use super::job_queue::JobQueue;
use super::jobs::{JobState, JobStore};
use super::live::{LiveJob, LiveJobs};
use super::nodes::NodePool;
use super::udf_catalog::RegistryCatalog;
use crate::action::{ActionEvent, ActionObserver};
use crate::driver::{DriverRequests, JobActions, JobSettings, driver_handler};
use std::io::Write;
use std::sync::Arc;
use weft_abi::plan::{ActionReply, ActionRequest};
use weft_abi::task::{ShuffleKey, TaskLimits};
use weft_abi::udf::{UdfBinding, UdfLookup};
use weft_sandbox::JobModule;
use weft_sandbox::capture::CapturedOutput;
use weft_wire::protocol::JobEvent;

/// What a cancelled job's actions fail with.
pub(crate) const CANCELLED: &str = "the job was cancelled";

/// Stack of a driver's thread.
const DRIVER_STACK: usize = 8 << 20;

/// What a job's driver needs of the coordinator.
#[derive(Clone)]
pub(crate) struct JobEnv {
    /// The API the job was submitted to (for the registry: UDFs).
    pub(crate) api: std::sync::Weak<super::api::CoordinatorApi>,
    pub(crate) pool: Arc<NodePool>,
    pub(crate) jobs: Arc<dyn JobStore>,
    pub(crate) live: Arc<LiveJobs>,
    pub(crate) storage: Arc<dyn weft_storage::Storage>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Most bytes of results one action may return to its driver.
    pub(crate) result_limit: u64,
    /// Tenants' jobs waiting for their running-jobs cap.
    pub(crate) queue: Arc<JobQueue<QueuedJob>>,
}

/// A job ready to start, now or when its tenant's running-jobs cap allows.
pub(crate) struct QueuedJob {
    pub(crate) live: Arc<LiveJob>,
    pub(crate) module: JobModule,
    pub(crate) args: Vec<String>,
    pub(crate) place: JobPlace,
}

/// Where a job's paths lead: the storage its driver plans with, and the data root its tasks
/// are told (a tenant's; `None` for the admin's jobs, which use the data directory itself).
pub(crate) struct JobPlace {
    pub(crate) storage: Arc<dyn weft_storage::Storage>,
    pub(crate) data_root: Option<String>,
    /// The tenant the job runs for.
    pub(crate) tenant: Option<String>,
}

/// Start jobs the queue let go: each is marked running, then its driver starts. One that cannot
/// start fails, and frees its place for the next.
pub(crate) fn start_queued(api: &JobEnv, jobs: Vec<(String, QueuedJob)>) {
    for (id, job) in jobs {
        if let Some(mut record) = api.jobs.get(&id) {
            record.state = JobState::Running;
            record.waiting = None;
            if let Err(e) = api.jobs.insert(record) {
                tracing::error!(job = %id, error = %e, "cannot record that the job started");
            }
        }
        start_or_fail(api, job);
    }
}

/// Start a job's driver; if that fails, the job fails with the cause (and its place in its
/// tenant's queue goes to the next job).
pub(crate) fn start_or_fail(api: &JobEnv, job: QueuedJob) -> Option<String> {
    let QueuedJob { live, module, args, place } = job;
    let id = live.id.clone();
    let tenant = place.tenant.clone();
    match start(api.clone(), live.clone(), module, args, place) {
        Ok(()) => None,
        Err(e) => {
            let error = format!("cannot start the driver: {e}");
            let _ = api.jobs.finish(&id, JobState::Failed, Some(error.clone()));
            live.push(JobEvent::Finished { exit_code: 1, error: Some(error.clone()) });
            api.pool.ledger().shares().forget_job(&id);
            api.live.ended(&id);
            if let Some(tenant) = tenant {
                start_queued(api, api.queue.ended(&tenant));
            }
            Some(error)
        }
    }
}

/// Start `job`'s driver.
fn start(
    api: JobEnv,
    job: Arc<LiveJob>,
    module: JobModule,
    args: Vec<String>,
    place: JobPlace,
) -> std::io::Result<()> {
    let key = weft_wire::pki::random_secret()
        .map_err(|e| std::io::Error::other(format!("cannot make the job's shuffle key: {e}")))?;
    std::thread::Builder::new()
        .name(format!("weft-driver-{}", job.id))
        // The driver's wasm and the planner's recursion over a plan's shuffles run here.
        .stack_size(DRIVER_STACK)
        .spawn(move || {
            let id = job.id.clone();
            let tenant = place.tenant.clone();
            let ended = (api.clone(), job.clone());
            let run = std::panic::AssertUnwindSafe(|| {
                run(api, job, module, args, place, ShuffleKey(key))
            });
            if std::panic::catch_unwind(run).is_err() {
                // A bug on the host's side: the job must still end, with the cause.
                let (api, job) = ended;
                tracing::error!(job = %id, "the driver's thread panicked");
                let error = "internal error: the coordinator's driver thread panicked".to_string();
                let _ = api.jobs.finish(&id, JobState::Failed, Some(error.clone()));
                job.push(JobEvent::Finished { exit_code: 1, error: Some(error) });
                api.pool.ledger().shares().forget_job(&id);
                api.live.ended(&id);
                if let Some(tenant) = tenant {
                    start_queued(&api, api.queue.ended(&tenant));
                }
            }
        })
        .map(|_| ())
}

/// Writes a driver's output into its job's log.
struct LogWriter {
    job: Arc<LiveJob>,
    stderr: bool,
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bytes = buf.to_vec();
        self.job.push(if self.stderr { JobEvent::Stderr(bytes) } else { JobEvent::Stdout(bytes) });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A cluster job's driver requests: refused once the job is cancelled.
struct ClusterDriver {
    job: Arc<LiveJob>,
    actions: JobActions<RemoteExecutor>,
}

impl DriverRequests for ClusterDriver {
    fn action(&mut self, request: &ActionRequest) -> ActionReply {
        if self.job.is_cancelled() {
            return ActionReply::Failed(CANCELLED.into());
        }
        self.actions.run(request)
    }

    fn bind_udf(&mut self, lookup: &UdfLookup) -> Result<UdfBinding, String> {
        if self.job.is_cancelled() {
            return Err(CANCELLED.into());
        }
        self.actions.bind_udf(lookup)
    }
}

/// A cluster job's actions, followed in its log.
struct LogObserver(Arc<LiveJob>);

impl ActionObserver for LogObserver {
    fn event(&mut self, event: &ActionEvent) {
        match event {
            ActionEvent::StageDone { stage, stages, tasks, describe } => {
                self.0.stage_done();
                let message =
                    format!("stage {}/{stages} done ({tasks} tasks): {describe}", stage + 1);
                self.0.push(JobEvent::Progress(message));
            }
            ActionEvent::Log(line) => {
                self.0.push(JobEvent::Stderr(format!("{line}\n").into_bytes()))
            }
            ActionEvent::TaskDone { .. } => self.0.task_done(),
            ActionEvent::Planned(_) | ActionEvent::Ended => {}
        }
    }
}

fn run(
    api: JobEnv,
    job: Arc<LiveJob>,
    module: JobModule,
    args: Vec<String>,
    place: JobPlace,
    key: ShuffleKey,
) {
    tracing::info!(job = %job.id, module = %module.hash(), "job started");
    job.driver_started();
    let stdout =
        CapturedOutput::forward(0, Box::new(LogWriter { job: job.clone(), stderr: false }));
    let stderr = CapturedOutput::forward(0, Box::new(LogWriter { job: job.clone(), stderr: true }));
    let policy = module.policy();
    let settings = JobSettings {
        job: job.id.clone(),
        module_hash: module.hash().to_string(),
        limits: TaskLimits {
            timeout_ms: policy.task_timeout.as_millis() as u64,
            memory_bytes: policy.memory_limit,
            result_bytes: api.result_limit,
        },
        key,
        split_bytes: None,
    };
    let tenant = place.tenant.clone();
    let executor =
        RemoteExecutor::new(api.pool.clone(), job.clone(), api.runtime.clone(), place.data_root);
    let observer = Box::new(LogObserver(job.clone()));
    let broadcasts = job.broadcasts.clone();
    let principal = match &tenant {
        Some(name) => Principal::Tenant(name.clone()),
        None => Principal::Admin,
    };
    let catalog = RegistryCatalog { api: api.api.clone(), principal };
    let actions = JobActions::new(settings, place.storage, executor, observer, broadcasts)
        .with_udfs(Box::new(catalog));
    let (handler, failure) = driver_handler(ClusterDriver { job: job.clone(), actions });
    let (exit_code, error) = match module.run_driver(&args, &stdout, &stderr, handler) {
        Ok(report) if report.exit_code == 0 => (0, None),
        Ok(report) => (report.exit_code, failure.lock().unwrap_or_else(|p| p.into_inner()).take()),
        Err(e) => (1, Some(format!("the driver failed: {e}"))),
    };
    let (state, exit_code, error) = if job.is_cancelled() {
        (JobState::Cancelled, exit_code.max(1), Some(CANCELLED.to_string()))
    } else if exit_code == 0 {
        (JobState::Succeeded, 0, None)
    } else {
        let error = error.unwrap_or_else(|| format!("exit status {exit_code}"));
        (JobState::Failed, exit_code, Some(error))
    };
    job.broadcasts.clear();
    tracing::info!(job = %job.id, exit_code, "job finished");
    // Recorded before followers see the end, so that whoever then asks finds it; the kept log
    // ends with the same event, so that following it later ends too.
    let finished = JobEvent::Finished { exit_code, error: error.clone() };
    let mut kept = job.log().since(0).0;
    kept.push(finished.clone());
    if let Err(e) = api.jobs.finish_with_log(&job.id, state, error, job.progress(), kept) {
        tracing::error!(job = %job.id, error = %e, "cannot record how the job ended");
    }
    job.push(finished);
    api.pool.ledger().shares().forget_job(&job.id);
    api.live.ended(&job.id);
    if let Some(tenant) = tenant {
        start_queued(&api, api.queue.ended(&tenant));
    }
}
