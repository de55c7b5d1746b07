//! # weft-abi: the types every Weft component agrees on
//!
//! Weft's pieces are compiled separately — the SDK into each job's module, the coordinator and
//! the node runtime into the `weft` binary — and meet only through data: MessagePack across the
//! sandbox boundary and across the network. This crate is that data, and nothing else (serde types
//! and the names of imports and exports; no I/O), so that it builds for `wasm32-wasip1` inside a
//! job as well as for the host, and so that host crates never depend on the user-facing SDK.
//! The idea is wasmtime's `environ` crate: the shared description of the world, apart from the
//! code on either side of it.
//!
//! - [`plan`]: the logical plan a driver sends when it runs an action.
//! - [`guest`]: the guest ABI — what a module exports and imports, the [`guest::GuestTask`] a task
//!   runs, the layout of text chunks, CSV options.
//! - [`task`]: a task as the coordinator hands it to an executor (embedded or a node): its id,
//!   inputs and output — one type from the planner to the wire to the node.
//! - [`udf`]: the UDF ABI — calling functions of another module by name, over batches, with
//!   Arrow-like type descriptors checked before any task runs.
//! - [`limits`]: the bounds every host enforces on what a guest sends.

mod bytes_serde;
pub mod guest;
pub mod limits;
pub mod plan;
pub mod task;
pub mod udf;
