//! Running a whole job on the embedded engine: compile the module, start the workers, run the
//! driver in its sandbox and serve its actions.

use crate::action::ActionObserver;
use crate::driver::{JobActions, JobSettings, driver_handler};
use crate::local::LocalExecutor;
use crate::udfs::LocalUdfCatalog;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use weft_abi::task::{ShuffleKey, TaskLimits};
use weft_sandbox::capture::CapturedOutput;
use weft_sandbox::{Engine, JobModule, ModuleCache, ModuleError, SandboxPolicy, TaskError};
use weft_storage::{DataDir, StorageError};

/// Bytes of the driver's stderr kept (besides printing it) to tell whether it reported a failure.
const DRIVER_STDERR_KEPT: usize = 64 << 10;

/// The job id of a job on the embedded engine.
const LOCAL_JOB: &str = "local";

/// A job to run on this machine.
pub struct LocalJob {
    /// The module's bytes.
    pub wasm: Vec<u8>,
    /// Arguments for the job's `main`.
    pub args: Vec<String>,
    /// Worker threads.
    pub workers: usize,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Sandbox limits.
    pub policy: SandboxPolicy,
    /// Split size of large text and CSV files (default 16 MiB).
    pub split_bytes: Option<u64>,
    /// Where compiled modules are kept between runs; `None` compiles every time.
    pub module_cache: Option<ModuleCache>,
    /// Most bytes of results one action may return to the driver.
    pub result_limit: u64,
    /// Who follows the job's actions (progress, task output, warnings).
    pub observer: Box<dyn ActionObserver + Send>,
    /// UDF modules the job may bind, by the name it binds them with (`weft run --udf`).
    pub udfs: Vec<(String, Vec<u8>)>,
}

/// Why a job could not run or did not finish.
#[derive(Debug, Error)]
pub enum RunError {
    /// The module was refused.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The data directory is unusable.
    #[error(transparent)]
    DataDir(#[from] StorageError),
    /// A UDF module given with the job is unusable.
    #[error("{0}")]
    Udf(String),
    /// The driver was stopped (deadline, memory, panic, trap).
    #[error("the driver failed: {0}")]
    Driver(TaskError),
}

/// How a job ended.
#[derive(Debug)]
pub struct JobOutcome {
    /// The driver's exit code: 0 for success.
    pub exit_code: i32,
    /// The last failed action's cause, if any action failed.
    pub failed_action: Option<String>,
    /// Whether the driver already printed that cause on its stderr (e.g. `main` returned the
    /// error), so that it need not be repeated.
    pub cause_shown: bool,
    /// Time spent validating and compiling the module.
    pub compile_time: Duration,
    /// Time from the driver's start to its end: the job itself.
    pub job_time: Duration,
}

/// Run `job`; the driver's stdout and stderr go to this process's.
pub fn run_local(job: LocalJob) -> Result<JobOutcome, RunError> {
    let data = DataDir::new(&job.data_dir)?;
    let started = Instant::now();
    let mut engine = Engine::new()?;
    if let Some(cache) = job.module_cache {
        engine = engine.with_module_cache(cache);
    }
    let module = JobModule::new(&engine, &job.wasm)?.with_policy(job.policy);
    let udfs = LocalUdfCatalog::new(&engine, job.udfs).map_err(RunError::Udf)?;
    let compile_time = started.elapsed();
    tracing::info!(hash = module.hash(), workers = job.workers, "module compiled");
    let storage: Arc<dyn weft_storage::Storage> = Arc::new(data);
    let policy = module.policy();
    let settings = JobSettings {
        job: LOCAL_JOB.into(),
        module_hash: module.hash().to_string(),
        limits: TaskLimits {
            timeout_ms: policy.task_timeout.as_millis() as u64,
            memory_bytes: policy.memory_limit,
            result_bytes: job.result_limit,
        },
        // Nothing outside this process can reach its map outputs.
        key: ShuffleKey(LOCAL_JOB.into()),
        split_bytes: job.split_bytes,
    };
    let broadcasts = Arc::new(crate::broadcasts::BroadcastStore::default());
    let executor = LocalExecutor::new(
        LOCAL_JOB,
        module.clone(),
        storage.clone(),
        job.workers,
        broadcasts.clone(),
        udfs.compiled(),
    );
    let actions = JobActions::new(settings, storage, executor, job.observer, broadcasts)
        .with_udfs(Box::new(udfs));
    let (handler, failed_action) = driver_handler(actions);
    let stdout = CapturedOutput::forward(0, Box::new(std::io::stdout()));
    let stderr = CapturedOutput::forward(DRIVER_STDERR_KEPT, Box::new(std::io::stderr()));
    let driver_started = Instant::now();
    let report =
        module.run_driver(&job.args, &stdout, &stderr, handler).map_err(RunError::Driver)?;
    let job_time = driver_started.elapsed();
    let failed_action = failed_action.lock().unwrap_or_else(|p| p.into_inner()).take();
    let (shown, _) = stderr.contents();
    let shown = String::from_utf8_lossy(&shown);
    let cause_shown = failed_action.as_ref().is_some_and(|c| shown.contains(c.as_str()));
    Ok(JobOutcome {
        exit_code: report.exit_code,
        failed_action,
        cause_shown,
        compile_time,
        job_time,
    })
}
