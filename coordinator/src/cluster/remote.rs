//! The cluster [`Executor`]: tasks run on node slots, map outputs stay on the nodes that made
//! them and are named by [`MapLocation`]s, which reduce tasks fetch from directly.
//!
//! The action loop runs on the driver's thread and is synchronous; each launched task becomes an
//! async request on the chosen node's connection (the coordinator opens the stream), whose
//! outcome comes back over a channel. A node that cannot be reached, or whose connection breaks
//! mid-task, turns its running tasks into retryable failures.

use super::Shared;
use super::jobs::{CANCELLED, Job};
use crate::action::{Completion, Executor, Finished, Launch, LaunchInput, LaunchOutput};
use crate::scheduler::TaskFailure;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};
use weft_runtime::input::FileFormat;
use weft_wire::protocol::{
    JobEvent, MapKey, MapLocation, RemoteInput, RemoteOutput, RemoteSplit, Request, Response,
    TaskAssignment,
};
use weft_wire::transport;

/// How long an action waits for a node to be available before failing.
const NO_NODES_TIMEOUT: Duration = Duration::from_secs(30);

type Outcome = (String, Completion<MapLocation>);

/// Runs one job's tasks on the cluster's nodes.
pub(crate) struct RemoteExecutor {
    shared: Arc<Shared>,
    job_handle: Arc<Job>,
    job: String,
    module_hash: String,
    action: u32,
    running: HashMap<String, usize>,
    tx: Sender<Outcome>,
    rx: Receiver<Outcome>,
}

impl RemoteExecutor {
    pub(crate) fn new(shared: Arc<Shared>, job: Arc<Job>, module_hash: String) -> RemoteExecutor {
        let (tx, rx) = channel();
        let id = job.id.clone();
        RemoteExecutor {
            shared,
            job_handle: job,
            job: id,
            module_hash,
            action: 0,
            running: HashMap::new(),
            tx,
            rx,
        }
    }

    /// Called before each action, so map outputs of different actions never share a key.
    pub(crate) fn next_action(&mut self) {
        self.action += 1;
    }

    /// The current action ended: every node may drop its map outputs (nothing is cached across
    /// actions yet).
    pub(crate) fn release_action(&self) {
        let conns: Vec<quinn::Connection> =
            super::lock(&self.shared.node_conns).values().cloned().collect();
        for conn in conns {
            let request = Request::ReleaseShuffle { job: self.job.clone(), action: self.action };
            self.shared.handle.spawn(async move {
                if let Err(e) = transport::request(&conn, &request).await {
                    tracing::debug!(error = %e, "could not release map outputs on a node");
                }
            });
        }
    }

    /// Alive nodes with a connection: (id, slots).
    fn nodes(&self) -> Vec<(String, u32)> {
        let status = super::lock(&self.shared.nodes).status(Instant::now());
        let conns = super::lock(&self.shared.node_conns);
        status
            .into_iter()
            .filter(|n| n.alive && conns.contains_key(&n.id))
            .map(|n| (n.id, n.slots))
            .collect()
    }

    fn free_on(&self, id: &str, slots: u32) -> usize {
        (slots as usize).saturating_sub(self.running.get(id).copied().unwrap_or(0))
    }
}

impl Executor for RemoteExecutor {
    type MapOutput = MapLocation;

    fn parallelism(&self) -> u32 {
        self.nodes().iter().map(|(_, s)| s).sum::<u32>().max(1)
    }

    fn free_slots(&self) -> usize {
        self.nodes().iter().map(|(id, slots)| self.free_on(id, *slots)).sum()
    }

    fn job_log(&mut self, line: &str) {
        self.job_handle.push(JobEvent::Stderr(format!("{line}\n").into_bytes()));
    }

    fn stage_completed(&mut self, message: &str) {
        self.job_handle.push(JobEvent::Progress(message.to_string()));
    }

    fn is_lost(&self, output: &MapLocation) -> bool {
        // A node keeps its connection in this table only while it is alive: the coordinator's
        // reaper removes it once heartbeats stop.
        !super::lock(&self.shared.node_conns).contains_key(&output.node_id)
    }

    fn wait_for_capacity(&mut self) -> Result<(), String> {
        let start = Instant::now();
        while self.free_slots() == 0 {
            if start.elapsed() > NO_NODES_TIMEOUT {
                return Err(format!(
                    "no node of the cluster had a free slot for {NO_NODES_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn launch(&mut self, launch: Launch<MapLocation>) -> Result<(), String> {
        if self.job_handle.is_cancelled() {
            return Err(CANCELLED.into());
        }
        let (node, _) = self
            .nodes()
            .into_iter()
            .max_by_key(|(id, slots)| self.free_on(id, *slots))
            .ok_or("no node is available")?;
        let conn = super::lock(&self.shared.node_conns).get(&node).cloned();
        let conn = conn.ok_or_else(|| format!("node {node} has no connection"))?;
        let id = launch.id;
        let input = match launch.input {
            LaunchInput::Inline(None) | LaunchInput::Split(None) => RemoteInput::Empty,
            LaunchInput::Inline(Some(batch)) => RemoteInput::Inline(batch.0),
            LaunchInput::Split(Some(split)) => RemoteInput::Split(RemoteSplit {
                path: split.display,
                start: split.start,
                end: split.end,
                gzip: split.gzip,
                csv: split.format == FileFormat::Csv,
                first_line: split.first_line,
                header_len: split.header_len,
            }),
            LaunchInput::Shuffle { bucket, maps } => RemoteInput::Shuffle { bucket, maps },
        };
        let output = match launch.output {
            LaunchOutput::Driver => RemoteOutput::Driver,
            LaunchOutput::Buckets(buckets) => RemoteOutput::Buckets {
                buckets,
                key: MapKey {
                    job: self.job.clone(),
                    action: self.action,
                    stage: id.stage as u32,
                    partition: id.partition,
                },
            },
            LaunchOutput::TextPart { tmp, part } => RemoteOutput::TextPart {
                tmp: tmp.to_string_lossy().into_owned(),
                part: part.to_string_lossy().into_owned(),
            },
        };
        let policy = &self.shared.policy;
        let assignment = TaskAssignment {
            job: self.job.clone(),
            module_hash: self.module_hash.clone(),
            task_timeout_ms: policy.task_timeout.as_millis() as u64,
            memory_limit: policy.memory_limit,
            guest: rmp_serde::to_vec(&*launch.guest).map_err(|e| e.to_string())?,
            input,
            output,
        };
        *self.running.entry(node.clone()).or_default() += 1;
        let tx = self.tx.clone();
        self.shared.handle.spawn(async move {
            let result = match transport::request(&conn, &Request::RunTask(Box::new(assignment)))
                .await
            {
                Ok(Response::TaskDone { batches, map_output, bad_rows, stdout, stderr }) => {
                    Ok(Finished {
                        batches: batches.into_iter().map(|b| Bytes::from(b.into_vec())).collect(),
                        map_output,
                        bad_rows,
                        stdout: stdout.into_vec(),
                        stderr: stderr.into_vec(),
                    })
                }
                Ok(Response::TaskFailed { message, retryable }) => {
                    Err(TaskFailure { message, retryable })
                }
                Ok(other) => Err(TaskFailure {
                    message: format!("node {node}: unexpected answer {other:?}"),
                    retryable: true,
                }),
                Err(e) => Err(TaskFailure {
                    message: format!("node {node} was lost: {e}"),
                    retryable: true,
                }),
            };
            let _ = tx.send((node, Completion { id, result }));
        });
        Ok(())
    }

    fn wait(&mut self) -> Result<Completion<MapLocation>, String> {
        let (node, completion) =
            self.rx.recv().map_err(|_| "the executor's channel closed".to_string())?;
        if let Some(n) = self.running.get_mut(&node) {
            *n = n.saturating_sub(1);
        }
        Ok(completion)
    }
}
