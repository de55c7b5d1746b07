//! Weft's benchmarks. Every figure is measured against a baseline in the same run, and every
//! engine's answer is checked against the others' before a time is printed.
//!
//! - `wordcount`: `weft run` vs the job's closures in a native single-threaded loop.
//! - `cluster`: a coordinator and two nodes on loopback vs `weft run`, node-to-node shuffle
//!   throughput, and submit-to-result latency of a tiny job.

mod cluster;
mod corpus;
mod wordcount;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "weft-bench", about = "Benchmarks with same-run baselines")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Word count: `weft run` (sandboxed, N workers) vs a native single-threaded loop.
    Wordcount(wordcount::Args),
    /// The cluster on loopback: word count vs `weft run`, shuffle throughput, tiny-job latency.
    Cluster(cluster::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Wordcount(args) => wordcount::run(args),
        Bench::Cluster(args) => cluster::run(args),
    }
}
