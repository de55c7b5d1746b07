//! `weft coordinator`, `weft node` and `weft status`: the cluster processes and their client.

use anyhow::{Context as _, bail};
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use weft_coordinator::cluster::CoordinatorService;
use weft_runtime::node::{NodeConfig, run_node};
use weft_wire::pki::{Token, TokenKind};
use weft_wire::protocol::{JobEvent, JobInfo, Request, Response};
use weft_wire::transport::{self, ServerTrust};

#[derive(clap::Args)]
pub struct CoordinatorArgs {
    /// Address to listen on (UDP, QUIC), e.g. 0.0.0.0:7070; nothing else is opened.
    #[arg(long)]
    listen: String,
    /// Where the cluster CA, certificates and tokens are kept (created on first start).
    #[arg(long)]
    state_dir: PathBuf,
    /// Data directory in which jobs' paths are planned (nodes see the same files in theirs).
    #[arg(long, default_value = ".")]
    data_dir: PathBuf,
    #[command(flatten)]
    limits: crate::limits::LimitArgs,
}

#[derive(clap::Args)]
pub struct NodeArgs {
    /// The coordinator's address.
    #[arg(long)]
    coordinator: String,
    /// The join token (the coordinator's `join-token` file).
    #[arg(long, env = "WEFT_JOIN_TOKEN", hide_env_values = true)]
    join_token: String,
    /// Task slots to offer (default: the number of cores).
    #[arg(long)]
    slots: Option<u32>,
    /// Where job inputs are read and outputs written (the same files on every node).
    #[arg(long)]
    data_dir: PathBuf,
    /// Scratch space for this node (shuffle spills, module cache).
    #[arg(long)]
    work_dir: PathBuf,
    /// Name shown in `weft status` (default: the host name and process id).
    #[arg(long)]
    name: Option<String>,
    /// Where this node serves shuffle data to other nodes (default: its address towards the
    /// coordinator, any free port).
    #[arg(long)]
    listen: Option<String>,
    /// MiB of map outputs kept in memory; beyond that they are spilled to the work directory.
    #[arg(long, default_value_t = 1024)]
    shuffle_memory: u64,
}

/// How a client reaches and authenticates to the coordinator.
#[derive(clap::Args)]
pub struct ClientArgs {
    /// The coordinator's address.
    #[arg(long)]
    coordinator: String,
    /// The admin token (the coordinator's `admin-token` file).
    #[arg(long, env = "WEFT_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    client: ClientArgs,
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

#[derive(clap::Args)]
pub struct JobsArgs {
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The job: a .wasm built with `cargo build --release --target wasm32-wasip1`.
    job: PathBuf,
    /// Stream the job's output and progress, and exit with its status.
    #[arg(long)]
    follow: bool,
    /// Arguments for the job, after `--`.
    #[arg(last = true)]
    args: Vec<String>,
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("bad address {addr:?} (expected HOST:PORT)"))?
        .next()
        .with_context(|| format!("{addr:?} resolves to no address"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `weft coordinator`.
pub fn coordinator(args: CoordinatorArgs) -> anyhow::Result<ExitCode> {
    let listen = resolve(&args.listen)?;
    if !args.data_dir.is_dir() {
        bail!("data directory {} does not exist", args.data_dir.display());
    }
    runtime()?.block_on(async {
        let policy = args.limits.policy();
        let service = CoordinatorService::start(listen, &args.state_dir, &args.data_dir, policy)
            .with_context(|| format!("cannot start the coordinator on {listen}"))?;
        let bound = service.local_addr()?;
        println!("coordinator listening on {bound}");
        println!("join token:  {}", args.state_dir.join("join-token").display());
        println!("admin token: {}", args.state_dir.join("admin-token").display());
        tokio::select! {
            _ = service.serve() => {}
            _ = tokio::signal::ctrl_c() => println!("coordinator stopping"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `weft node`.
pub fn node(args: NodeArgs) -> anyhow::Result<ExitCode> {
    let coordinator = resolve(&args.coordinator)?;
    let join_token = Token::parse(&args.join_token, TokenKind::Join)?;
    let slots = args
        .slots
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    if slots == 0 {
        bail!("--slots must be at least 1");
    }
    let name = args.name.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let shuffle_listen = args.listen.as_deref().map(resolve).transpose()?;
    let config = NodeConfig {
        coordinator,
        join_token,
        slots,
        name,
        data_dir: args.data_dir,
        work_dir: args.work_dir,
        shuffle_listen,
        shuffle_memory: args.shuffle_memory << 20,
    };
    runtime()?.block_on(async {
        tokio::select! {
            result = run_node(config) => result.context("the node stopped")?,
            _ = tokio::signal::ctrl_c() => println!("node stopping"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A connection to the coordinator as a client holding the admin token.
struct Client {
    conn: quinn::Connection,
    secret: String,
    _endpoint: quinn::Endpoint,
}

impl Client {
    async fn connect(args: &ClientArgs) -> anyhow::Result<Client> {
        let addr = resolve(&args.coordinator)?;
        let token = Token::parse(&args.token, TokenKind::Admin)?;
        let endpoint =
            transport::client_endpoint(ServerTrust::PinnedCa(token.ca_fingerprint.clone()), None)?;
        let conn = transport::connect(&endpoint, addr).await?;
        Ok(Client { conn, secret: token.secret, _endpoint: endpoint })
    }

    async fn request(&self, request: Request) -> anyhow::Result<Response> {
        match transport::request(&self.conn, &request).await? {
            Response::Refused { reason } => bail!("the coordinator refused: {reason}"),
            other => Ok(other),
        }
    }
}

fn print_jobs(jobs: &[JobInfo]) {
    for j in jobs {
        let error = j.error.as_deref().map(|e| format!("  {e}")).unwrap_or_default();
        println!(
            "{:<8} {:<10} {:>6}s  {}{error}",
            j.id,
            j.state,
            j.age_secs,
            &j.module_hash[..12.min(j.module_hash.len())]
        );
    }
}

/// `weft status [JOB]`.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let client = Client::connect(&args.client).await?;
        if let Some(job_id) = args.job {
            let Response::Jobs(jobs) = client.request(Request::JobStatus { token_secret: client.secret.clone(), job_id }).await? else {
                bail!("unexpected answer");
            };
            print_jobs(&jobs);
            return Ok(ExitCode::SUCCESS);
        }
        let Response::ClusterStatus { nodes, counters } =
            client.request(Request::ClusterStatus { token_secret: client.secret.clone() }).await?
        else {
            bail!("unexpected answer");
        };
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
                "{:<8} {:<6} {:>3} slots  {:<16} tasks={} module_bytes_received={} compilations={} shuffle_bytes_fetched={} shuffle_fetch_micros={} shuffle_bytes_served={} map_outputs_held={} shuffle_bytes_spilled={} last_seen_ms={}",
                n.id, state, n.slots, n.name, c.tasks, c.module_bytes_sent, c.compilations, c.shuffle_bytes_fetched, c.shuffle_fetch_micros, c.shuffle_bytes_served, c.map_outputs_held, c.shuffle_bytes_spilled, n.last_seen_ms
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `weft cancel JOB`.
pub fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let client = Client::connect(&args.client).await?;
        let request =
            Request::Cancel { token_secret: client.secret.clone(), job_id: args.job.clone() };
        let Response::Jobs(jobs) = client.request(request).await? else {
            bail!("unexpected answer");
        };
        eprintln!("cancelling {}", args.job);
        print_jobs(&jobs);
        Ok(ExitCode::SUCCESS)
    })
}

/// `weft jobs`.
pub fn jobs(args: JobsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let client = Client::connect(&args.client).await?;
        let Response::Jobs(jobs) =
            client.request(Request::Jobs { token_secret: client.secret.clone() }).await?
        else {
            bail!("unexpected answer");
        };
        print_jobs(&jobs);
        Ok(ExitCode::SUCCESS)
    })
}

/// `weft submit`.
pub fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let wasm =
        std::fs::read(&args.job).with_context(|| format!("cannot read {}", args.job.display()))?;
    if !wasm.starts_with(b"\0asm") {
        bail!("{} is not a WebAssembly module", args.job.display());
    }
    let hash = weft_wire::pki::sha256_hex(&wasm);
    runtime()?.block_on(async {
        let client = Client::connect(&args.client).await?;
        let secret = client.secret.clone();
        let present = matches!(
            client
                .request(Request::HasModule { token_secret: secret.clone(), hash: hash.clone() })
                .await?,
            Response::ModuleStatus { present: true }
        );
        if !present {
            client
                .request(Request::UploadModule {
                    token_secret: secret.clone(),
                    hash: hash.clone(),
                    wasm,
                })
                .await?;
            eprintln!("uploaded module {}", &hash[..12]);
        }
        let Response::Submitted { job_id } = client
            .request(Request::Submit { token_secret: secret.clone(), hash, args: args.args })
            .await?
        else {
            bail!("unexpected answer");
        };
        eprintln!("submitted {job_id}");
        if !args.follow {
            println!("{job_id}");
            return Ok(ExitCode::SUCCESS);
        }
        let mut events = transport::open_request(
            &client.conn,
            &Request::Follow { token_secret: secret, job_id: job_id.clone() },
        )
        .await?;
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
    })
}
