//! Serving a driver's requests: what the host does when a job's `main` calls `run_action` (or
//! binds a UDF, see [`crate::udfs`]).
//!
//! [`JobActions`] holds what every action of one job shares — the job's identity, module,
//! limits and shuffle key, its storage, its executor and whoever follows it — and runs each
//! request: plan its stages, reserve its output directory if it saves one, run it through
//! [`run_action`], release its map outputs, commit the output. [`driver_handler`] is the
//! sandbox-facing side: bytes in, bytes out, and the last failure remembered so that a driver
//! that exits with an error can be reported with its cause.

use crate::action::{ActionEvent, ActionObserver, ActionRun, ActionSettings, drive};
use crate::broadcasts::BroadcastStore;
use crate::executor::Executor;
use crate::planner::plan_stages;
use crate::udfs::{JobUdfs, NoUdfs, UdfCatalog};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use weft_abi::plan::{ActionKind, ActionReply, ActionRequest, DatasetId};
use weft_abi::task::{CACHE_ACTION, MapOutput, ShuffleKey, TaskLimits};
use weft_abi::udf::{UdfBinding, UdfLookup};
use weft_sandbox::DriverCall;
use weft_storage::Storage;
use weft_storage::staged::StagedDir;

/// Default most bytes of results an action may return to the driver (Spark's
/// `spark.driver.maxResultSize` is 1 GiB too).
pub const DEFAULT_RESULT_LIMIT: u64 = 1 << 30;

/// What every action of a job shares.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// The job's id.
    pub job: String,
    /// Its module's hash.
    pub module_hash: String,
    /// Sandbox limits of its tasks (`result_bytes`: the most one action may return to the
    /// driver).
    pub limits: TaskLimits,
    /// Its shuffle key (an unguessable secret).
    pub key: ShuffleKey,
    /// Largest split of a text or CSV input (default: 16 MiB).
    pub split_bytes: Option<u64>,
}

/// Runs the actions of one job.
pub struct JobActions<E: Executor> {
    settings: JobSettings,
    storage: Arc<dyn Storage>,
    executor: E,
    observer: Box<dyn ActionObserver + Send>,
    actions: u32,
    /// The blocks of cached datasets, by dataset and partition (`None`: not computed, or lost).
    cached: HashMap<DatasetId, Vec<Option<MapOutput>>>,
    /// The job's broadcast values.
    broadcasts: Arc<BroadcastStore>,
    /// The UDF modules the job bound.
    udfs: JobUdfs,
}

impl<E: Executor> JobActions<E> {
    /// Actions of the job `settings` describes, reading and writing `storage`, running on
    /// `executor`, followed by `observer`; broadcast values are kept in `broadcasts`, where
    /// the executor's machines find them.
    pub fn new(
        settings: JobSettings,
        storage: Arc<dyn Storage>,
        executor: E,
        observer: Box<dyn ActionObserver + Send>,
        broadcasts: Arc<BroadcastStore>,
    ) -> JobActions<E> {
        let cached = HashMap::new();
        let udfs = JobUdfs::new(Box::new(NoUdfs));
        JobActions { settings, storage, executor, observer, actions: 0, cached, broadcasts, udfs }
    }

    /// Find the job's UDF modules in `catalog` (by default there are none).
    pub fn with_udfs(mut self, catalog: Box<dyn UdfCatalog>) -> JobActions<E> {
        self.udfs = JobUdfs::new(catalog);
        self
    }

    /// Run one action to its end.
    pub fn run(&mut self, request: &ActionRequest) -> ActionReply {
        self.actions += 1;
        let action = self.actions;
        let reply = match self.try_run(request, action) {
            Ok(output) => ActionReply::Done(output),
            Err(message) => ActionReply::Failed(message),
        };
        self.executor.action_ended(&self.settings.job, action);
        reply
    }

    fn try_run(
        &mut self,
        request: &ActionRequest,
        action: u32,
    ) -> Result<weft_abi::plan::ActionOutput, String> {
        self.broadcasts.add(request.broadcasts.clone())?;
        for dataset in &request.unpersist {
            if self.cached.remove(dataset).is_some() {
                self.executor.release_cached(&self.settings.job, *dataset);
            }
        }
        let s = &self.settings;
        let graph = plan_stages(request, &*self.storage, self.executor.capacity(), s.split_bytes)
            .map_err(|e| e.to_string())?;
        let output = match &request.kind {
            ActionKind::SaveText { path } => {
                Some(StagedDir::create(self.storage.clone(), path).map_err(|e| e.to_string())?)
            }
            ActionKind::ToDriver => None,
        };
        let settings = ActionSettings {
            job: s.job.clone(),
            action,
            module_hash: s.module_hash.clone(),
            limits: s.limits,
            key: s.key.clone(),
            staging: output.as_ref().map(|o| o.staging().to_string()),
            broadcasts: self.broadcasts.refs(),
            udfs: self.udfs.modules().to_vec(),
        };
        let mut run = ActionRun::new(settings, graph);
        let reused = run.reuse_cached(&self.cached);
        drive(&mut self.executor, &mut *self.observer, &mut run);
        let cached = run.cached_blocks();
        if !cached.is_empty() {
            let computed = run.blocks_computed();
            let line = format!(
                "cache: {reused} partitions kept from earlier actions, {computed} computed"
            );
            self.observer.event(&ActionEvent::Log(line));
        }
        self.cached.extend(cached);
        let result = run.finish()?;
        if let Some(output) = output {
            output.commit().map_err(|e| e.to_string())?;
        }
        Ok(result)
    }
}

impl<E: Executor> Drop for JobActions<E> {
    /// The job is over: its cached blocks go.
    fn drop(&mut self) {
        if !self.cached.is_empty() {
            self.executor.action_ended(&self.settings.job, CACHE_ACTION);
        }
    }
}

/// What a driver asks of its host, decoded.
pub trait DriverRequests: Send + 'static {
    /// Run an action.
    fn action(&mut self, request: &ActionRequest) -> ActionReply;
    /// Bind a UDF.
    fn bind_udf(&mut self, lookup: &UdfLookup) -> Result<UdfBinding, String>;
}

impl<E: Executor + Send + 'static> DriverRequests for JobActions<E> {
    fn action(&mut self, request: &ActionRequest) -> ActionReply {
        self.run(request)
    }

    fn bind_udf(&mut self, lookup: &UdfLookup) -> Result<UdfBinding, String> {
        self.udfs.bind(lookup)
    }
}

/// The last failed action's cause, as recorded by a [`driver_handler`].
pub type LastFailure = Arc<Mutex<Option<String>>>;

/// The host side of the driver's `run_action` and `udf_bind` imports: decode the request, hand
/// it to `host`, remember the cause of the last failure (to report it if the driver exits with
/// an error), encode the reply.
pub fn driver_handler(mut host: impl DriverRequests) -> (weft_sandbox::ActionHandler, LastFailure) {
    let last_failure = LastFailure::default();
    let record = last_failure.clone();
    let remember = move |message: &str| {
        *record.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.to_string());
    };
    let handler = Box::new(move |kind: DriverCall, request: &[u8]| match kind {
        DriverCall::Action => {
            let reply = match rmp_serde::from_slice::<ActionRequest>(request) {
                Ok(request) => host.action(&request),
                Err(e) => ActionReply::Failed(format!("cannot decode the action request: {e}")),
            };
            if let ActionReply::Failed(message) = &reply {
                remember(message);
            }
            rmp_serde::to_vec(&reply).unwrap_or_default()
        }
        DriverCall::BindUdf => {
            let reply = match rmp_serde::from_slice::<UdfLookup>(request) {
                Ok(lookup) => host.bind_udf(&lookup),
                Err(e) => Err(format!("cannot decode the UDF lookup: {e}")),
            };
            if let Err(message) = &reply {
                remember(message);
            }
            rmp_serde::to_vec(&reply).unwrap_or_default()
        }
    });
    (handler, last_failure)
}
