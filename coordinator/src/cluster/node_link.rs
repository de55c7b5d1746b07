//! A node's [`NodeLink`] over its mutually authenticated QUIC connection: each task is a stream
//! the coordinator opens, with the task's deadline; its result batches arrive as a stream of
//! parts.
//!
//! How a failure is reported decides whether it is retried: a connection that broke or a node
//! that does not answer in time is the machine's trouble (retried, elsewhere if possible); a
//! reply the coordinator cannot accept (malformed, oversized) is reported with that cause and
//! not retried, since the same task would send the same reply.

use crate::executor::TaskSuccess;
use crate::service::nodes::NodeLink;
use bytes::Bytes;
use std::time::{Duration, Instant};
use weft_abi::task::{TaskFailure, TaskSpec};
use weft_storage::shuffle_store::BATCH_OVERHEAD;
use weft_wire::protocol::{PartsJoiner, Request, Response};
use weft_wire::transport::{self, FramedRecv, TransportError};

/// How long a release may take before the coordinator stops waiting (it changes nothing for the
/// job: the node drops the outputs when it can).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// A node reached through its connection to the coordinator.
pub(crate) struct QuicNodeLink {
    pub(crate) node_id: String,
    pub(crate) conn: quinn::Connection,
}

impl QuicNodeLink {
    fn failure(&self, e: TransportError) -> TaskFailure {
        if e.is_connection_trouble() {
            TaskFailure::infrastructure(format!("node {} was lost: {e}", self.node_id))
        } else {
            TaskFailure::job(format!("cannot exchange the task with node {}: {e}", self.node_id))
        }
    }

    async fn read_results(
        &self,
        rx: &mut FramedRecv,
        batches: u32,
        limit: u64,
        deadline: Instant,
    ) -> Result<Vec<Bytes>, TaskFailure> {
        let mut out = Vec::with_capacity(batches.min(1 << 16) as usize);
        let mut joiner = PartsJoiner::default();
        let mut total = 0u64;
        while out.len() < batches as usize {
            match rx.expect_by::<Response>(deadline).await.map_err(|e| self.failure(e))? {
                Response::ResultPart { bytes, end_of_batch } => {
                    total += bytes.len() as u64 + if end_of_batch { BATCH_OVERHEAD } else { 0 };
                    if total > limit {
                        return Err(TaskFailure::job(format!(
                            "the task's results for the driver exceed {} MiB",
                            limit >> 20
                        )));
                    }
                    if let Some(batch) = joiner.push(bytes, end_of_batch) {
                        out.push(Bytes::from(batch));
                    }
                }
                other => {
                    return Err(TaskFailure::job(format!(
                        "node {} sent {other:?} among a task's results",
                        self.node_id
                    )));
                }
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl NodeLink for QuicNodeLink {
    async fn run_task(
        &self,
        task: TaskSpec,
        timeout: Duration,
    ) -> Result<TaskSuccess, TaskFailure> {
        let deadline = Instant::now() + timeout;
        let limit = task.limits.result_bytes;
        let request = Request::RunTask(Box::new(task));
        let mut rx = transport::open_request(&self.conn, &request, deadline)
            .await
            .map_err(|e| self.failure(e))?;
        match rx.expect_by::<Response>(deadline).await.map_err(|e| self.failure(e))? {
            Response::TaskDone { map_output, bad_rows, accumulators, stdout, stderr, batches } => {
                let batches = self.read_results(&mut rx, batches, limit, deadline).await?;
                Ok(TaskSuccess {
                    batches,
                    map_output,
                    bad_rows,
                    accumulators,
                    stdout: stdout.into_vec(),
                    stderr: stderr.into_vec(),
                })
            }
            Response::TaskFailed(failure) => Err(failure),
            Response::Refused { reason } => Err(TaskFailure::infrastructure(format!(
                "node {} refused the task: {reason}",
                self.node_id
            ))),
            other => Err(TaskFailure::infrastructure(format!(
                "node {}: unexpected answer {other:?}",
                self.node_id
            ))),
        }
    }

    async fn release(&self, job: String, action: u32, stage: Option<u32>) {
        let request = Request::ReleaseShuffle { job, action, stage };
        if let Err(e) = transport::request_within(&self.conn, &request, RELEASE_TIMEOUT).await {
            tracing::debug!(node = %self.node_id, error = %e, "could not release map outputs on a node");
        }
    }

    fn close(&self, reason: &str) {
        self.conn.close(2u32.into(), reason.as_bytes());
    }

    fn connection_id(&self) -> u64 {
        self.conn.stable_id() as u64
    }
}
