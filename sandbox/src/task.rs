//! Running one task, or the driver, in a fresh sandbox.
//!
//! A task gets its input from a [`BatchSource`] (file splits, inline records, fetched shuffle
//! buckets) and leaves its output in the form its [`OutputSpec`] asks for.

use crate::capture::CapturedOutput;
use crate::error::TaskError;
use crate::io::{BatchSource, OutputSink, OutputSpec, TaskOutput};
use crate::module::JobModule;
use crate::store::{
    ActionHandler, DriverIo, MemoryBudget, Role, SandboxState, TaskIo, classify, new_store,
};
use crate::udf_host::{BoundUdf, UdfSandboxes};
use std::time::Instant;
use wasmtime::Store;
use weft_abi::guest::{EXPORT_ALLOC, EXPORT_RUN_TASK, GuestTask, STATUS_OK};

/// What a successful task leaves behind besides its output.
#[derive(Debug)]
pub struct TaskReport {
    /// The output, as asked for.
    pub output: TaskOutput,
    /// Rows a lenient CSV source skipped, with the first one's error.
    pub bad_rows: Option<(u64, String)>,
    /// What the task added to accumulators.
    pub accumulators: Vec<weft_abi::guest::AccumulatorUpdate>,
    /// Captured stdout (capped) of the task.
    pub stdout: Vec<u8>,
    /// Captured stderr (capped) of the task.
    pub stderr: Vec<u8>,
}

/// How the driver ended.
#[derive(Debug)]
pub struct DriverReport {
    /// The exit code of `main` (0 when it returned normally).
    pub exit_code: i32,
}

impl JobModule {
    /// Run `task` in a fresh sandbox over `inputs` (by input index), its output going where
    /// `output` says; it may call the UDFs of `udfs`, each in a sandbox of its own.
    pub fn run_task(
        &self,
        task: &GuestTask,
        inputs: Vec<Box<dyn BatchSource>>,
        output: OutputSpec,
        broadcasts: std::collections::HashMap<u64, bytes::Bytes>,
        udfs: Vec<BoundUdf>,
    ) -> Result<TaskReport, TaskError> {
        let encoded = rmp_serde::to_vec(task)
            .map_err(|e| TaskError::Setup(format!("cannot encode the task: {e}")))?;
        let labels = (0..=task.steps.len() as u32)
            .filter_map(|i| task.label(i).map(str::to_string))
            .collect();
        let sink = OutputSink::open(output);
        let stdout = CapturedOutput::buffer(self.policy.output_cap);
        let stderr = CapturedOutput::buffer(self.policy.output_cap);
        let limit = self.policy.task_timeout;
        let memory = MemoryBudget::default();
        let udfs = UdfSandboxes::new(udfs, memory.clone(), &self.policy, &stdout, &stderr);
        let io = TaskIo {
            inputs,
            pending: None,
            timeout: limit,
            output: sink,
            bad_rows: None,
            accumulators: Vec::new(),
            broadcasts,
            labels,
            udfs,
        };
        let mut store = new_store(
            &self.engine,
            &self.policy,
            Role::Task(Box::new(io)),
            &["weft-task".to_string()],
            &stdout,
            &stderr,
            limit,
            memory,
        );
        let outcome = self.call_task(&mut store, &encoded);
        let state = store.into_data();
        let Role::Task(io) = state.role else { unreachable!("a task store holds a task role") };
        // On failure, dropping the sink discards what the task wrote.
        outcome?;
        Ok(TaskReport {
            output: io.output.finish()?,
            bad_rows: io.bad_rows,
            accumulators: io.accumulators,
            stdout: stdout.contents().0,
            stderr: stderr.contents().0,
        })
    }

    fn call_task(&self, store: &mut Store<SandboxState>, encoded: &[u8]) -> Result<(), TaskError> {
        let limit = self.policy.task_timeout;
        let instance =
            self.pre.instantiate(&mut *store).map_err(|e| classify(e, store, None, limit))?;
        let memory = instance.get_memory(&mut *store, "memory");
        let result = (|| {
            let alloc = instance.get_typed_func::<u32, u32>(&mut *store, EXPORT_ALLOC)?;
            let run = instance.get_typed_func::<(u32, u32), i32>(&mut *store, EXPORT_RUN_TASK)?;
            let len = u32::try_from(encoded.len())
                .map_err(|_| wasmtime::format_err!("task too large"))?;
            let ptr = alloc.call(&mut *store, len)?;
            let mem =
                memory.ok_or_else(|| wasmtime::format_err!("the module exports no memory"))?;
            mem.write(&mut *store, ptr as usize, encoded)?;
            run.call(&mut *store, (ptr, len))
        })();
        match result {
            Ok(STATUS_OK) => Ok(()),
            Ok(_) => Err(TaskError::Failed(
                store
                    .data_mut()
                    .fail_message
                    .take()
                    .unwrap_or_else(|| "the task failed without saying why".into()),
            )),
            Err(e) => Err(classify(e, store, memory, limit)),
        }
    }

    /// Run the job's `main` with `args`; actions it runs are handed to `actions`. Its stdout and
    /// stderr go to the given streams.
    pub fn run_driver(
        &self,
        args: &[String],
        stdout: &CapturedOutput,
        stderr: &CapturedOutput,
        actions: ActionHandler,
    ) -> Result<DriverReport, TaskError> {
        let limit = self.policy.driver_timeout;
        let io =
            DriverIo { actions, pending_reply: None, budget: limit, resumed_at: Instant::now() };
        let mut argv = vec!["job".to_string()];
        argv.extend_from_slice(args);
        let role = Role::Driver(io);
        let memory = MemoryBudget::default();
        let mut store =
            new_store(&self.engine, &self.policy, role, &argv, stdout, stderr, limit, memory);
        let instance =
            self.pre.instantiate(&mut store).map_err(|e| classify(e, &mut store, None, limit))?;
        let memory = instance.get_memory(&mut store, "memory");
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| TaskError::Setup(format!("{e:#}")))?;
        match start.call(&mut store, ()) {
            Ok(()) => Ok(DriverReport { exit_code: 0 }),
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => Ok(DriverReport { exit_code: exit.0 }),
                None => Err(classify(e, &mut store, memory, limit)),
            },
        }
    }
}
