//! Errors of the runtime, worded for the person who submitted the job.

use std::time::Duration;
use thiserror::Error;
use weft_abi::task::{FailureKind, LostOutput, TaskFailure};

/// A module that cannot be used as a Weft job.
#[derive(Debug, Error)]
pub enum ModuleError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly module: the file does not start with the `\\0asm` magic bytes")]
    NotWasm,
    /// WebAssembly, but malformed or invalid.
    #[error("invalid WebAssembly module: {0}")]
    Invalid(String),
    /// Valid WebAssembly, but not built against the Weft SDK (or for the wrong target).
    #[error("not a Weft job: {0}")]
    NotAJob(String),
    /// A module used as a UDF module that is not one.
    #[error("not a UDF module: {0}")]
    NotUdf(String),
    /// The engine itself could not be set up.
    #[error("{0}")]
    Engine(String),
}

/// Why a task (or the driver) did not complete. `Display` is the message users see.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TaskError {
    /// The CPU deadline passed.
    #[error("deadline exceeded: ran longer than the {limit:?} limit{}", at(operator))]
    DeadlineExceeded {
        /// The limit that was hit.
        limit: Duration,
        /// The operator running at the time, if known.
        operator: Option<String>,
    },
    /// The instance tried to grow its memory beyond the cap.
    #[error("memory limit reached: needed more than {limit_mib} MiB{}", at(operator))]
    MemoryLimit {
        /// The cap, in MiB.
        limit_mib: u64,
        /// The operator running at the time, if known.
        operator: Option<String>,
    },
    /// User code panicked.
    #[error("guest panicked{}: {message}", at(operator))]
    Panic {
        /// Where it panicked.
        operator: Option<String>,
        /// The panic message and location.
        message: String,
    },
    /// The guest reported a failure (bad input row, undecodable batch…).
    #[error("{0}")]
    Failed(String),
    /// The host could not read the task's input.
    #[error("input error: {0}")]
    Input(String),
    /// A map output could not be fetched from where it was (its node went away, or no longer has
    /// it); worth a retry once it has been computed again.
    #[error("fetch error: {message}")]
    Fetch {
        /// The map output and the node it was asked of, when known.
        lost: Option<LostOutput>,
        /// What happened.
        message: String,
    },
    /// The host could not write the task's output.
    #[error("output error: {0}")]
    Output(String),
    /// The host could not keep the task's map output (its spill disk failed): another machine
    /// may do better.
    #[error("cannot keep the map output: {0}")]
    Spill(String),
    /// The task's results for the driver add up to more than the limit.
    #[error(
        "the task's results for the driver exceed {} MiB; reduce them before collecting, or raise --max-result-size",
        limit >> 20
    )]
    ResultTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Any other trap (stack overflow, an `unreachable`, a bad call).
    #[error("guest trapped{}: {message}", at(operator))]
    Trap {
        /// The operator running at the time, if known.
        operator: Option<String>,
        /// wasmtime's description of the trap.
        message: String,
    },
    /// The sandbox could not be set up.
    #[error("cannot start the sandbox: {0}")]
    Setup(String),
}

impl TaskError {
    /// The failure as an outcome reports it: whether running the same task again could succeed
    /// is the kind. Failures caused by the job's code or data (including unreadable input files
    /// and results over the limit) are the job's; setting up a sandbox and keeping map outputs
    /// can fail for the machine's reasons; a fetch failure names the output to compute again.
    pub fn to_failure(&self) -> TaskFailure {
        let kind = match self {
            TaskError::Setup(_) | TaskError::Spill(_) => FailureKind::Infrastructure,
            TaskError::Fetch { lost: Some(lost), .. } => FailureKind::FetchFailed(lost.clone()),
            TaskError::Fetch { lost: None, .. } => FailureKind::Infrastructure,
            _ => FailureKind::Job,
        };
        TaskFailure { kind, message: self.to_string() }
    }
}

fn at(operator: &Option<String>) -> String {
    match operator {
        Some(op) => format!(" in `{op}`"),
        None => String::new(),
    }
}
