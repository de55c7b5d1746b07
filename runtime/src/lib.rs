//! # weft-runtime: where user code runs
//!
//! The node side of Weft. It compiles a job's module once ([`Engine::compile`] →
//! [`JobModule`]) and runs it many times, each task and the driver in a fresh wasmtime `Store`:
//! the store is the unit of isolation, the compiled module and its pre-linked instance are shared.
//!
//! Every sandbox gets, and only gets:
//! - WASI preview 1 with no preopened directories, no environment variables and no sockets;
//!   stdout/stderr captured with a size cap ([`capture`]);
//! - a CPU deadline enforced by epoch interruption (a background thread ticks the engine's epoch
//!   every [`TICK`]), and a hard memory cap enforced by a resource limiter;
//! - the `weft` host functions ([`host_fns`]): the only way data gets in or out.
//!
//! Data itself is read and written by the host, confined to the job's data directory
//! ([`DataDir`]): file sources ([`input`]), text output ([`text_output`]). Shuffle buckets and
//! collected results are plain bytes handed back to the caller, which decides where they live.
//!
//! [`node`] is the node as a cluster member (join, register, heartbeat over QUIC).

mod aligned_read;
pub mod capture;
mod csv_layout;
mod data_dir;
mod engine;
mod error;
mod host_fns;
pub mod input;
mod module;
mod module_cache;
pub mod node;
mod sandbox;
mod task;
pub mod text_output;

pub use data_dir::{DataDir, DataDirError, InputFile};
pub use engine::{Engine, SandboxPolicy, TICK};
pub use error::{ModuleError, TaskError};
pub use module::JobModule;
pub use module_cache::ModuleCache;
pub use sandbox::ActionHandler;
pub use task::{BatchSource, DriverReport, OutputSpec, TaskOutput, TaskReport, VecSource};
