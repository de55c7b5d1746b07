//! The `weft` command line: `run` (embedded engine, `run.rs` and its progress display in
//! `progress.rs`), `coordinator` and `node` (the cluster's processes, `server.rs`), `submit`,
//! `jobs`, `status`, `cancel` and `logs` (clients of a coordinator, `client.rs`), `tenant`
//! (`tenants.rs`), `module` (the registry, `modules.rs`). Errors are `anyhow` here, at the binary's edge.

mod client;
mod limits;
mod modules;
mod progress;
mod run;
mod server;
mod tenants;

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
    Coordinator(server::CoordinatorArgs),
    /// Run a node that joins a cluster and offers task slots.
    Node(server::NodeArgs),
    /// Upload a job (if the cluster does not have it yet) and start it.
    Submit(client::SubmitArgs),
    /// List the cluster's jobs.
    Jobs(client::ListArgs),
    /// Stop a job on the cluster.
    Cancel(client::CancelArgs),
    /// Show the cluster's nodes and counters, or one job.
    Status(client::StatusArgs),
    /// Print a job's log from its start, following it until it ends.
    Logs(client::LogsArgs),
    /// Manage the cluster's tenants (admin token).
    #[command(subcommand)]
    Tenant(tenants::TenantCommand),
    /// Name, list, show and delete modules in the cluster's registry.
    #[command(subcommand)]
    Module(modules::ModuleCommand),
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
        Command::Coordinator(args) => server::coordinator(args),
        Command::Node(args) => server::node(args),
        Command::Submit(args) => client::submit(args),
        Command::Jobs(args) => client::jobs(args),
        Command::Cancel(args) => client::cancel(args),
        Command::Status(args) => client::status(args),
        Command::Logs(args) => client::logs(args),
        Command::Tenant(command) => tenants::run(command),
        Command::Module(command) => modules::run(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weft: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
