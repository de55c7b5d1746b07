//! Weft's benchmarks. Every figure is measured against a baseline in the same run, and every
//! engine's answer is checked against the others' before a time is printed.
//!
//! - `compare`: the workloads (word count, web-log analysis, flights, flights ⋈ airlines, a
//!   sort) on PySpark (RDD and DataFrame APIs), `weft run`, a Weft cluster on loopback and a
//!   native loop, side by side.
//! - `wordcount`: `weft run` vs the job's closures in a native single-threaded loop.
//! - `cluster`: a coordinator and two nodes on loopback vs `weft run`, node-to-node shuffle
//!   throughput, and submit-to-result latency of a tiny job.
//! - `udf`: `map_udf` into a UDF module vs the same function inlined in the job.

mod answer;
mod cluster;
mod compare;
mod corpus;
mod engines;
mod flights_data;
mod logs;
mod measure;
mod native;
mod records;
mod report;
mod udf;
mod wordcount;
mod workloads;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "weft-bench", about = "Benchmarks with same-run baselines")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Every workload on every engine: PySpark RDD and DataFrame, weft run, a Weft cluster,
    /// native Rust. Answers are checked against each other before times are reported.
    Compare(compare::Args),
    /// Word count: `weft run` (sandboxed, N workers) vs a native single-threaded loop.
    Wordcount(wordcount::Args),
    /// The cluster on loopback: word count vs `weft run`, shuffle throughput, tiny-job latency.
    Cluster(cluster::Args),
    /// `map_udf` calling a cheap UDF module vs the same function inlined in the job.
    Udf(udf::Args),
    /// One workload in a native single-threaded loop (the `native` engine of `compare`).
    #[command(hide = true)]
    Native(native::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Wordcount(args) => wordcount::run(args),
        Bench::Cluster(args) => cluster::run(args),
        Bench::Compare(args) => compare::run(args),
        Bench::Native(args) => native::run(args),
        Bench::Udf(args) => udf::run(args),
    }
}
