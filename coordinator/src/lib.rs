//! # weft-coordinator: from a driver's actions to tasks on slots
//!
//! The coordinator runs a job's driver in a sandbox and serves each action the driver asks for.
//! The logic is sans-I/O and tested in memory; I/O is a thin layer around it:
//!
//! - [`planner`]: physical planning — a logical plan cut into stages at shuffle boundaries,
//!   narrow where the data is already partitioned the right way.
//! - [`stages`]: the physical plan — each stage's tree of inputs and operators, and the guest
//!   work of each of its tasks.
//! - [`scheduler`]: which task of an action runs next, attempts and retries (a state machine).
//! - [`action`]: one action as a state machine ([`action::ActionRun`]), and the loop that runs
//!   it on an [`executor::Executor`].
//! - [`slots`]: one ledger of task slots for the whole cluster, shared by all jobs; who may take
//!   a free slot is [`fair_share`]'s rule (tenants' caps and weights, max-min between jobs).
//! - [`driver`]: serving a driver's actions (plan, stage the output, run, commit).
//! - [`udfs`]: binding a job's UDFs — finding the module, checking the call against the
//!   signatures it declares, a slot per module for every task.
//! - [`local`] and [`job`]: the embedded engine behind `weft run` — an executor of worker
//!   threads, and a whole job run on it.
//! - [`service`]: the coordinator's operations behind one API type, for an authenticated
//!   principal (the admin, a tenant, a node): nodes, tenants, modules, jobs. Transport adapters
//!   only translate.
//! - [`state`]: what survives a restart — the job history, tenants and module ownership — in
//!   one embedded database.
//! - [`cluster`]: the coordinator on the network — QUIC connections authenticated once into a
//!   principal, node links, the cluster's executor.

pub mod action;
pub mod broadcasts;
pub mod cluster;
pub mod driver;
pub mod executor;
pub mod fair_share;
pub mod job;
pub mod local;
pub mod planner;
pub mod scheduler;
pub mod service;
pub mod slots;
pub mod stages;
pub mod state;
pub mod udfs;

pub use job::{JobOutcome, LocalJob, RunError, run_local};
