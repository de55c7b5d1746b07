//! # Weft: Spark-style data jobs in Rust, run in WebAssembly sandboxes
//!
//! A job is an ordinary Rust program built for `wasm32-wasip1`. Its `main` is the *driver*: it
//! builds lazy [`Dataset`]s from a [`Context`], transforms them with closures, and runs actions.
//! The engine runs every partition of every stage in its own sandboxed instance of the same
//! module, on any number of cores or machines.
//!
//! ```no_run
//! use weft::prelude::*;
//!
//! fn main() -> weft::Result<()> {
//!     let ctx = Context::new();
//!     let counts = ctx
//!         .text_file("books/")
//!         .flat_map(|line: String| {
//!             line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>()
//!         })
//!         .map(|w: String| (w, 1u64))
//!         .reduce_by_key(|a, b| a + b)
//!         .collect()?;
//!     println!("{} distinct words", counts.len());
//!     Ok(())
//! }
//! ```
//!
//! ## Closures are shipped as code
//!
//! Closures passed to transformations must not capture variables: the engine re-creates them
//! from their type inside other sandboxes. Capturing one is a compile error that names
//! `map_with`; pass values explicitly instead: `ds.map_with(n, |n, x| x * *n)`.
//!
//! ## What crosses the sandbox boundary
//!
//! Records are any `Serialize + DeserializeOwned` type and travel as MessagePack batches. The
//! guest does no I/O: sources are read and sinks written by the host, inside the job's data
//! directory only.
//!
//! The types the host shares with the guest (the plan, the task ABI) live in the `weft-abi` crate;
//! job authors do not need them.

// The shared types under the names the SDK's modules use for them.
use weft_abi::guest as abi;
use weft_abi::plan;

mod accumulators;
mod actions;
mod broadcast;
mod context;
mod dataset;
mod error;
mod exec;
mod host;
mod joins;
mod numbers;
mod pairs;
mod partitions;
mod persist;
mod record;
mod sets;
pub mod sketch;
mod sorting;
#[cfg(any(
    test,
    all(feature = "task-allocator", target_arch = "wasm32", not(target_feature = "atomics"))
))]
mod task_alloc;
pub mod udf;

/// Small blocks from size classes, the rest from wasi-libc's allocator: see `task_alloc`.
#[cfg(all(feature = "task-allocator", target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static TASK_ALLOCATOR: task_alloc::TaskAllocator = task_alloc::TaskAllocator::new();

pub use abi::CsvOptions;
pub use accumulators::{Accumulator, AccumulatorNumber};
pub use broadcast::Broadcast;
pub use context::Context;
pub use dataset::Dataset;
pub use error::{Error, Result};
pub use numbers::{Number, Stats};
pub use record::{Key, Record};
pub use udf::{Udf, UdfType};

/// Everything a job usually needs: `use weft::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Accumulator, Broadcast, Context, CsvOptions, Dataset, Key, Number, Record, Stats, Udf,
        UdfType,
    };
}

/// Re-exported so jobs can derive `Serialize`/`Deserialize` without naming serde themselves.
pub use serde;
