//! `weft submit`, `weft jobs`, `weft status`, `weft cancel` and `weft logs`: clients of a
//! coordinator (`weft tenant` is in `tenants.rs`).
//!
//! A client connects trusting only the CA its token names, authenticates the connection once
//! with the token, then sends its requests. `--json` prints what the coordinator answered as
//! JSON, for scripts and tests.

use crate::server::{resolve, runtime};
use anyhow::bail;
use std::io::Write;
use std::process::ExitCode;
use weft_wire::pki::Token;
use weft_wire::protocol::{JobEvent, JobInfo, NodeInfo, Request, Response};
use weft_wire::transport::{self, ClientEndpoint, ServerTrust};

/// How a client reaches and authenticates to the coordinator.
#[derive(clap::Args)]
pub struct ClientArgs {
    /// The coordinator's address.
    #[arg(long)]
    coordinator: String,
    /// The admin token (the coordinator's `admin-token` file) or a tenant's token (printed by
    /// `weft tenant create`).
    #[arg(long, env = "WEFT_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The job: its log from the start, followed until it ends (the last MiB is kept after).
    job: String,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
    /// A job to show; without it, the cluster's nodes and counters.
    job: Option<String>,
}

#[derive(clap::Args)]
pub struct CancelArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The job to stop.
    job: String,
}

/// A listing command's arguments (`jobs`, `tenant list`, `module list`).
#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// Print the answer as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The job: a .wasm built with `cargo build --release --target wasm32-wasip1`, or a module
    /// of the registry, TENANT/NAME[@VERSION] (yours or a public one).
    job: std::path::PathBuf,
    /// Stream the job's output and progress, and exit with its status.
    #[arg(long)]
    follow: bool,
    /// Memory each task may use, MiB (default: the tenant's cap, else the coordinator's
    /// `--memory-limit`); more than the tenant's cap is refused.
    #[arg(long)]
    memory_limit: Option<u64>,
    /// How long each task may run, seconds (default and cap as for `--memory-limit`).
    #[arg(long)]
    task_timeout: Option<u64>,
    /// Arguments for the job, after `--`.
    #[arg(last = true)]
    args: Vec<String>,
}

/// An authenticated connection to the coordinator.
pub(crate) struct Client {
    conn: quinn::Connection,
    _endpoint: ClientEndpoint,
}

impl Client {
    pub(crate) async fn connect(args: &ClientArgs) -> anyhow::Result<Client> {
        let addr = resolve(&args.coordinator)?;
        let token = Token::parse_client(&args.token)?;
        let endpoint =
            transport::client_endpoint(ServerTrust::PinnedCa(token.ca_fingerprint.clone()), None)?;
        let conn = transport::connect(&endpoint, addr).await?;
        let client = Client { conn, _endpoint: endpoint };
        client.request(Request::Authenticate { token_secret: token.secret }).await?;
        Ok(client)
    }

    pub(crate) async fn request(&self, request: Request) -> anyhow::Result<Response> {
        match transport::request(&self.conn, &request).await? {
            Response::Refused { reason } => bail!("the coordinator refused: {reason}"),
            other => Ok(other),
        }
    }

    async fn jobs(&self, request: Request) -> anyhow::Result<Vec<JobInfo>> {
        match self.request(request).await? {
            Response::Jobs(jobs) => Ok(jobs),
            other => bail!("unexpected answer {other:?}"),
        }
    }
}

fn print_jobs(jobs: &[JobInfo]) {
    if jobs.is_empty() {
        println!("no jobs");
        return;
    }
    println!(
        "{:<10} {:<12} {:<10} {:>7} {:>7} {:>7}  module",
        "job", "tenant", "state", "ran", "stages", "tasks"
    );
    for j in jobs {
        let error = j.error.as_deref().or(j.waiting.as_deref());
        let error = error.map(|e| format!("  {e}")).unwrap_or_default();
        println!(
            "{:<10} {:<12} {:<10} {:>6}s {:>7} {:>7}  {}{error}",
            j.id,
            j.tenant,
            j.state,
            j.run_secs,
            j.stages,
            j.tasks,
            &j.module_hash[..12.min(j.module_hash.len())]
        );
    }
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_nodes(nodes: &[NodeInfo], counters: &weft_wire::protocol::Counters) {
    let alive = nodes.iter().filter(|n| n.alive).count();
    let slots: u32 = nodes.iter().filter(|n| n.alive).map(|n| n.slots).sum();
    println!("{alive} node(s) alive, {slots} slot(s)");
    println!(
        "coordinator: module_bytes_sent={} shuffle_bytes_relayed={}",
        counters.module_bytes_sent, counters.shuffle_bytes_relayed
    );
    for n in nodes {
        let state = if n.alive { "alive" } else { "lost" };
        let c = &n.counters;
        println!(
            "{:<8} {:<6} {:>3} slots ({} used)  {:<16} tasks={} running={} peak_running={} \
             module_bytes_received={} compilations={} shuffle_bytes_fetched={} \
             shuffle_bytes_served={} map_outputs_held={} shuffle_bytes_spilled={} last_seen_ms={}",
            n.id,
            state,
            n.slots,
            n.slots_used,
            n.name,
            c.tasks,
            c.running_tasks,
            c.peak_running_tasks,
            c.module_bytes_sent,
            c.compilations,
            c.shuffle_bytes_fetched,
            c.shuffle_bytes_served,
            c.map_outputs_held,
            c.shuffle_bytes_spilled,
            n.last_seen_ms
        );
    }
}

/// `weft status [JOB]`.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let client = Client::connect(&args.client).await?;
        if let Some(job_id) = args.job {
            let jobs = client.jobs(Request::JobStatus { job_id }).await?;
            match args.json {
                true => print_json(&jobs)?,
                false => print_jobs(&jobs),
            }
            return Ok(ExitCode::SUCCESS);
        }
        let Response::ClusterStatus { nodes, counters } =
            client.request(Request::ClusterStatus).await?
        else {
            bail!("unexpected answer");
        };
        if args.json {
            print_json(&serde_json::json!({ "nodes": nodes, "counters": counters }))?;
        } else {
            print_nodes(&nodes, &counters);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `weft cancel JOB`.
pub fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let client = Client::connect(&args.client).await?;
        let jobs = client.jobs(Request::Cancel { job_id: args.job.clone() }).await?;
        eprintln!("cancelling {}", args.job);
        print_jobs(&jobs);
        Ok(ExitCode::SUCCESS)
    })
}

/// `weft jobs`.
pub fn jobs(args: ListArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let client = Client::connect(&args.client).await?;
        let jobs = client.jobs(Request::Jobs).await?;
        match args.json {
            true => print_json(&jobs)?,
            false => print_jobs(&jobs),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `weft submit`.
pub fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    // A file if there is one by that name, else a name of the registry.
    let named = !args.job.exists() && is_module_name(&args.job.to_string_lossy());
    let file = if named { None } else { Some(crate::modules::read_module(&args.job)?) };
    runtime()?.block_on(async {
        let client = Client::connect(&args.client).await?;
        let hash = match file {
            Some((wasm, hash)) => {
                crate::modules::ensure_uploaded(&client, wasm, &hash).await?;
                hash
            }
            None => args.job.to_string_lossy().into_owned(),
        };
        let Response::Submitted { job_id } = client
            .request(Request::Submit {
                hash,
                args: args.args,
                memory_limit_mib: args.memory_limit,
                task_timeout_secs: args.task_timeout,
            })
            .await?
        else {
            bail!("unexpected answer");
        };
        eprintln!("submitted {job_id}");
        if !args.follow {
            println!("{job_id}");
            return Ok(ExitCode::SUCCESS);
        }
        follow(&client, &job_id).await
    })
}

/// Whether `text` looks like `TENANT/NAME[@VERSION]` (the coordinator checks it properly).
fn is_module_name(text: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let path = text.split_once('@').map_or(text, |(p, _)| p);
    matches!(path.split_once('/'), Some((t, n)) if ok(t) && ok(n) && !text.ends_with(".wasm"))
}

/// `weft logs JOB`: the job's log; exits with 0 once it is all printed, whatever the job did.
pub fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let client = Client::connect(&args.client).await?;
        follow(&client, &args.job).await.map(|_| ExitCode::SUCCESS)
    })
}

/// Print a job's events until it ends; exit with its status.
async fn follow(client: &Client, job_id: &str) -> anyhow::Result<ExitCode> {
    let request = Request::Follow { job_id: job_id.to_string() };
    let far = std::time::Instant::now() + transport::REQUEST_TIMEOUT;
    let mut events = transport::open_request(&client.conn, &request, far).await?;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    loop {
        match events.next::<Response>().await? {
            Some(Response::Event(JobEvent::Stdout(b))) => {
                stdout.write_all(&b)?;
                stdout.flush()?;
            }
            Some(Response::Event(JobEvent::Stderr(b))) => stderr.write_all(&b)?,
            Some(Response::Event(JobEvent::Progress(message))) => {
                writeln!(stderr, "[{job_id}] {message}")?;
            }
            Some(Response::Event(JobEvent::Finished { exit_code, error })) => {
                if let Some(e) = error {
                    eprintln!("weft: {job_id} failed: {e}");
                } else if exit_code != 0 {
                    eprintln!("weft: {job_id} exited with status {exit_code}");
                }
                return Ok(ExitCode::from(exit_code.clamp(0, 255) as u8));
            }
            Some(Response::Refused { reason }) => bail!("the coordinator refused: {reason}"),
            Some(other) => bail!("unexpected answer {other:?}"),
            None => bail!("the coordinator ended the stream before {job_id} finished"),
        }
    }
}
