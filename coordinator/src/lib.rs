//! # weft-coordinator: from a driver's actions to tasks on slots
//!
//! The coordinator runs a job's driver in a sandbox ([`job`]) and serves each action the driver
//! asks for: it cuts the logical plan into stages at shuffle boundaries ([`stages`]), decides
//! which task runs next ([`scheduler`], a pure state machine with no I/O, tested in memory), and
//! hands tasks to executors. [`local`] is the embedded executor behind `weft run`: a pool of
//! worker threads on this machine. [`cluster`] is the coordinator as a network service: node
//! admission and liveness over QUIC; remote task execution plugs in at the same place as
//! [`local`].

pub mod action;
pub mod cluster;
pub mod job;
pub mod local;
pub mod scheduler;
pub mod stages;

pub use job::{JobOutcome, LocalJob, RunError, run_local};
