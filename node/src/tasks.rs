//! Running the tasks the coordinator assigns: take one of the node's slots (a task beyond them is
//! refused, whatever the coordinator thinks), get the compiled module and the UDF modules the
//! job bound, run the spec on a blocking thread through [`run_spec`], and answer: `TaskDone` followed by the result batches
//! as a stream of parts (so that no reply is one frame over the limit), or `TaskFailed` with
//! the failure's kind.

use crate::NodeState;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use weft_abi::task::{FailureKind, TaskFailure, TaskSpec};
use weft_sandbox::{BoundUdf, SpecOutcome, run_spec};
use weft_wire::protocol::{Request, Response, batch_parts};
use weft_wire::transport::{self, TransportError};

/// One of the node's slots, given back when dropped.
pub(crate) struct Slot<'a>(&'a NodeState);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Take a slot, if one is free.
pub(crate) fn take_slot(state: &NodeState) -> Option<Slot<'_>> {
    let slots = state.config.slots;
    let taken = state
        .running
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < slots).then_some(n + 1));
    match taken {
        Ok(before) => {
            state.peak_running.fetch_max(before + 1, Ordering::Relaxed);
            Some(Slot(state))
        }
        Err(_) => None,
    }
}

/// Run one assigned task and answer on `tx`.
pub(crate) async fn run_and_answer(
    state: Arc<NodeState>,
    coordinator: &quinn::Connection,
    spec: TaskSpec,
    mut tx: quinn::SendStream,
) -> Result<(), TransportError> {
    // What the description weighs: its guest work, inputs and references, never the values.
    state.counters().task_spec_bytes += rmp_serde::to_vec(&spec).map_or(0, |b| b.len() as u64);
    let outcome = match take_slot(&state) {
        None => {
            state.counters().tasks_refused += 1;
            Err(TaskFailure {
                kind: FailureKind::Busy,
                message: format!(
                    "node {} is full: all {} of its slots are busy",
                    state.node_id(),
                    state.config.slots
                ),
            })
        }
        Some(_slot) => run(&state, coordinator, spec).await,
    };
    match outcome {
        Ok(done) => {
            let report = done.report;
            let batches = report.output.into_batches();
            let header = Response::TaskDone {
                map_output: done.map_output,
                bad_rows: report.bad_rows,
                accumulators: report.accumulators,
                stdout: report.stdout.into(),
                stderr: report.stderr.into(),
                batches: batches.len() as u32,
            };
            transport::send(&mut tx, &header).await?;
            for batch in &batches {
                for (part, end_of_batch) in batch_parts(batch) {
                    let part = Response::ResultPart { bytes: part.to_vec(), end_of_batch };
                    transport::send(&mut tx, &part).await?;
                }
            }
            tx.finish().map_err(|e| TransportError::Io(e.to_string()))
        }
        Err(failure) => transport::respond(tx, &Response::TaskFailed(failure)).await,
    }
}

async fn run(
    state: &Arc<NodeState>,
    coordinator: &quinn::Connection,
    spec: TaskSpec,
) -> Result<SpecOutcome, TaskFailure> {
    let node = state.node_id();
    let loaded = load(state, coordinator, &spec.module_hash).await.map_err(|e| {
        TaskFailure::infrastructure(format!("node {node}: cannot load the module: {e}"))
    })?;
    if loaded.fetched > 0 {
        let mut c = state.counters();
        c.module_bytes_sent += loaded.fetched;
        c.compilations += 1;
        tracing::info!(hash = %spec.module_hash, bytes = loaded.fetched, "module fetched and compiled");
    }
    loaded.module.require_job().map_err(|e| TaskFailure::job(e.to_string()))?;
    // The UDF modules the job bound, each fetched and compiled once per node.
    let mut udfs = Vec::with_capacity(spec.udfs.len());
    for r in &spec.udfs {
        let loaded = load(state, coordinator, &r.hash).await.map_err(|e| {
            TaskFailure::infrastructure(format!(
                "node {node}: cannot load UDF module {}: {e}",
                r.name
            ))
        })?;
        if loaded.fetched > 0 {
            let mut c = state.counters();
            c.udf_module_bytes += loaded.fetched;
            c.udf_compilations += 1;
            tracing::info!(module = %r.name, bytes = loaded.fetched, "UDF module fetched and compiled");
        }
        loaded.module.require_udf().map_err(|e| TaskFailure::job(format!("{}: {e}", r.name)))?;
        udfs.push(BoundUdf { slot: r.slot, name: r.name.clone(), module: loaded.module });
    }
    // The job's broadcast values, each fetched once per node (the first task that needs it).
    for r in &spec.broadcasts {
        let fetch = || async {
            let request =
                Request::FetchBroadcast { job: spec.id.job.clone(), hash: r.hash.clone() };
            match transport::request(coordinator, &request).await {
                Ok(Response::Broadcast(bytes)) => Ok(bytes),
                Ok(Response::Refused { reason }) => Err(reason),
                Ok(other) => Err(format!("unexpected answer {other:?}")),
                Err(e) => Err(e.to_string()),
            }
        };
        let (_, fetched) = state.broadcasts.get(r, fetch).await.map_err(|e| {
            TaskFailure::infrastructure(format!("node {node}: cannot get broadcast {}: {e}", r.id))
        })?;
        if fetched > 0 {
            let mut c = state.counters();
            c.broadcast_bytes += fetched;
            c.broadcasts_fetched += 1;
        }
    }
    let host = state
        .task_host(spec.data_root.as_deref())
        .map_err(|e| TaskFailure::job(format!("node {node}: {e}")))?;
    let module = loaded.module;
    let outcome = tokio::task::spawn_blocking(move || run_spec(&module, &spec, &host, udfs)).await;
    state.counters().tasks += 1;
    match outcome {
        Ok(result) => result.map_err(|e| e.to_failure()),
        Err(e) => Err(TaskFailure::infrastructure(format!("internal error on node {node}: {e}"))),
    }
}

/// The compiled module `hash`, fetched from the coordinator if this node does not have it.
async fn load(
    state: &NodeState,
    coordinator: &quinn::Connection,
    hash: &str,
) -> Result<crate::modules::Loaded, String> {
    let fetch = || async {
        let request = Request::FetchModule { hash: hash.to_string() };
        match transport::request(coordinator, &request).await {
            Ok(Response::Module(bytes)) => Ok(bytes),
            Ok(Response::Refused { reason }) => Err(reason),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    };
    state.modules.get(hash, fetch).await
}
