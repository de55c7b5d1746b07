//! The `weft` command line: `run` (embedded engine), `coordinator` and `node` (cluster
//! processes), `submit`, `jobs`, `status` and `cancel` (cluster clients). Each command family lives in its own module; errors are
//! `anyhow` here, at the binary's edge.

mod cluster;
mod limits;
mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "weft", version, about = "Run Spark-style data jobs compiled to WebAssembly")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job on the embedded engine, using this machine's cores.
    Run(run::RunArgs),
    /// Run the cluster coordinator.
    Coordinator(cluster::CoordinatorArgs),
    /// Run a node that joins a cluster and offers task slots.
    Node(cluster::NodeArgs),
    /// Upload a job (if the cluster does not have it yet) and start it.
    Submit(cluster::SubmitArgs),
    /// List the cluster's jobs.
    Jobs(cluster::JobsArgs),
    /// Stop a job on the cluster.
    Cancel(cluster::CancelArgs),
    /// Show the cluster's nodes and counters, or one job.
    Status(cluster::StatusArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs piped to a file or another program stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Coordinator(args) => cluster::coordinator(args),
        Command::Node(args) => cluster::node(args),
        Command::Submit(args) => cluster::submit(args),
        Command::Jobs(args) => cluster::jobs(args),
        Command::Cancel(args) => cluster::cancel(args),
        Command::Status(args) => cluster::status(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weft: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
