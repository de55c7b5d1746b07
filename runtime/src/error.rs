//! Errors of the runtime, worded for the person who submitted the job.

use std::time::Duration;
use thiserror::Error;

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
    /// Input could not be fetched from another process (its node went away); worth a retry once
    /// the data is available again.
    #[error("fetch error: {0}")]
    Fetch(String),
    /// The host could not store the task's output.
    #[error("output error: {0}")]
    Output(String),
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
    /// Whether running the same task again could succeed. Failures caused by the job's code or
    /// data (including unreadable input files) are deterministic; setting up the sandbox and
    /// fetching input from other nodes can fail transiently.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TaskError::Setup(_) | TaskError::Fetch(_))
    }
}

fn at(operator: &Option<String>) -> String {
    match operator {
        Some(op) => format!(" in `{op}`"),
        None => String::new(),
    }
}
