//! Running the tasks the coordinator assigns: fetch and compile the module once (cached by
//! hash), build the input (file split from this node's data directory, inline batch, or buckets
//! fetched from other nodes), run the sandbox on a blocking thread, keep map output here.

use super::{NodeState, shuffle};
use crate::input::{FileFormat, FileSplit, SplitReader};
use crate::{BatchSource, JobModule, OutputSpec, SandboxPolicy, TaskOutput, VecSource};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use weft::abi::GuestTask;
use weft_wire::protocol::{
    MapLocation, RemoteInput, RemoteOutput, Request, Response, TaskAssignment,
};
use weft_wire::transport;

fn failed(message: impl Into<String>, retryable: bool) -> Response {
    Response::TaskFailed { message: message.into(), retryable }
}

/// Run one assigned task and describe the outcome for the coordinator.
pub(crate) async fn run(
    state: Arc<NodeState>,
    coordinator: &quinn::Connection,
    task: TaskAssignment,
) -> Response {
    let module = match module(&state, coordinator, &task.module_hash).await {
        Ok(m) => m,
        Err(e) => {
            return failed(format!("node {}: cannot load the module: {e}", state.node_id()), true);
        }
    };
    let guest: GuestTask = match rmp_serde::from_slice(&task.guest) {
        Ok(g) => g,
        Err(e) => return failed(format!("malformed task: {e}"), false),
    };
    let input: Box<dyn BatchSource> = match task.input {
        RemoteInput::Empty => Box::new(VecSource::new([])),
        RemoteInput::Inline(bytes) => Box::new(VecSource::new([Bytes::from(bytes)])),
        RemoteInput::Split(split) => match state.data.existing(&split.path) {
            Ok(path) => Box::new(SplitReader::new(vec![FileSplit {
                path,
                display: split.path,
                start: split.start,
                end: split.end,
                gzip: split.gzip,
                format: if split.csv { FileFormat::Csv } else { FileFormat::Text },
                first_line: split.first_line,
                header_len: split.header_len,
            }])),
            Err(e) => return failed(e.to_string(), false),
        },
        RemoteInput::Shuffle { bucket, maps } => {
            Box::new(shuffle::RemoteBuckets::new(state.clone(), maps, bucket))
        }
    };
    let (output, key) = match task.output {
        RemoteOutput::Driver => (OutputSpec::Batches, None),
        RemoteOutput::Buckets { buckets, key } => (OutputSpec::Buckets(buckets), Some(key)),
        RemoteOutput::TextPart { tmp, part } => {
            match (state.data.new_file(&tmp), state.data.new_file(&part)) {
                (Ok(tmp), Ok(part)) => (OutputSpec::TextPart { tmp, part }, None),
                (Err(e), _) | (_, Err(e)) => return failed(e.to_string(), false),
            }
        }
    };
    let policy = SandboxPolicy {
        task_timeout: Duration::from_millis(task.task_timeout_ms),
        driver_timeout: Duration::from_millis(task.task_timeout_ms),
        memory_limit: task.memory_limit,
        ..SandboxPolicy::default()
    };
    let module = module.with_policy(policy);
    let outcome = tokio::task::spawn_blocking(move || module.run_task(&guest, input, output)).await;
    state.counters.lock().unwrap_or_else(|p| p.into_inner()).tasks += 1;
    let report = match outcome {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return failed(e.to_string(), e.is_retryable()),
        Err(e) => {
            return failed(format!("internal error on node {}: {e}", state.node_id()), true);
        }
    };
    let (batches, map_output) = match (report.output, key) {
        (TaskOutput::Buckets(buckets), Some(key)) => {
            // Keeping the output may mean writing it to disk: not on the async threads.
            let store = state.clone();
            let stored_key = key.clone();
            let stored =
                tokio::task::spawn_blocking(move || store.shuffle.put(stored_key, buckets)).await;
            let receipt = match stored {
                Ok(Ok(receipt)) => receipt,
                Ok(Err(e)) => return failed(format!("node {}: {e}", state.node_id()), true),
                Err(e) => {
                    return failed(
                        format!("internal error on node {}: {e}", state.node_id()),
                        true,
                    );
                }
            };
            state.counters.lock().unwrap_or_else(|p| p.into_inner()).shuffle_bytes_spilled +=
                receipt.spilled;
            let location = MapLocation {
                node_id: state.node_id(),
                shuffle_addr: state.shuffle_addr(),
                key,
                bucket_bytes: receipt.bucket_bytes,
            };
            (Vec::new(), Some(location))
        }
        (TaskOutput::Batches(b), _) => {
            (b.into_iter().map(|x| serde_bytes::ByteBuf::from(x.to_vec())).collect(), None)
        }
        _ => (Vec::new(), None),
    };
    Response::TaskDone {
        batches,
        map_output,
        bad_rows: report.bad_rows,
        stdout: report.stdout.into(),
        stderr: report.stderr.into(),
    }
}

/// The compiled module for `hash`: from this node's cache, else fetched from the coordinator,
/// checked against its hash and compiled (or loaded from the node's module cache) — once per
/// node.
async fn module(
    state: &NodeState,
    coordinator: &quinn::Connection,
    hash: &str,
) -> Result<JobModule, String> {
    let mut modules = state.modules.lock().await;
    if let Some(m) = modules.get(hash) {
        return Ok(m.clone());
    }
    let wasm =
        match transport::request(coordinator, &Request::FetchModule { hash: hash.to_string() })
            .await
        {
            Ok(Response::Module(bytes)) => bytes,
            Ok(Response::Refused { reason }) => return Err(reason),
            Ok(other) => return Err(format!("unexpected answer {other:?}")),
            Err(e) => return Err(e.to_string()),
        };
    let actual = weft_wire::pki::sha256_hex(&wasm);
    if actual != hash {
        return Err(format!("received module hashes to {actual}, expected {hash}"));
    }
    let engine = state.engine.clone();
    let size = wasm.len() as u64;
    let compiled = tokio::task::spawn_blocking(move || engine.compile(&wasm))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    {
        let mut c = state.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.module_bytes_sent += size;
        c.compilations += 1;
    }
    tracing::info!(%hash, bytes = size, "module fetched and compiled");
    modules.insert(hash.to_string(), compiled.clone());
    Ok(compiled)
}
