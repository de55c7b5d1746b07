//! # weft-sandbox: where user code runs
//!
//! A job's module is compiled once per process ([`JobModule::new`] on a shared [`Engine`]) and
//! run many times, each task and the driver in a fresh wasmtime `Store`: the store is the unit of
//! isolation, the compiled module and its pre-linked instance are shared.
//!
//! Every sandbox gets, and only gets:
//! - WASI preview 1 with no preopened directories, no environment variables and no sockets;
//!   stdout/stderr captured with a size cap ([`capture`]);
//! - a CPU deadline enforced by epoch interruption (a background thread ticks the engine's epoch
//!   every [`TICK`]), and a hard memory cap enforced by a resource limiter;
//! - the `weft` host functions: the only way data gets in or out.
//!
//! The sandbox does no I/O of its own choosing: a task reads what its [`BatchSource`] gives it and
//! its output goes where its [`OutputSpec`] says. Where those come from (file splits, shuffle
//! buckets on this machine or another) is the caller's business.
//!
//! [`run_spec`] runs a whole [`weft_abi::task::TaskSpec`]: it opens the task's inputs from the
//! job's storage and the shuffle store (fetching pieces held elsewhere through a [`FetchBucket`])
//! and keeps its output where the spec says; the embedded engine and the node daemon both use it.
//!
//! Modules: `engine` (configuration, ticker), `module` (validation, linking), `store` (one
//! sandbox's state and limits, trap classification), `host_fns` (the `weft` imports), `io`
//! (task input and output), `task` (running a task or a driver), `runner` (running a task
//! spec), `module_cache` (compiled code kept on disk), `capture` (guest stdout/stderr),
//! `udf_host` (the sandboxes of the UDFs a task calls).

pub mod capture;
mod engine;
mod error;
mod host_fns;
mod io;
mod module;
mod module_cache;
mod runner;
mod store;
mod task;
mod udf_host;

pub use engine::{Engine, SandboxPolicy, TICK};
pub use error::{ModuleError, TaskError};
pub use io::{BatchSource, InputError, OutputSpec, TaskOutput, VecSource};
pub use module::{JobModule, module_hash};
pub use module_cache::ModuleCache;
pub use runner::{BroadcastBlobs, FetchBucket, SpecOutcome, TaskHost, run_spec};
pub use store::{ActionHandler, DriverCall};
pub use task::{DriverReport, TaskReport};
pub use udf_host::{BoundUdf, udf_signatures};
