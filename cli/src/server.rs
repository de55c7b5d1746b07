//! `weft coordinator` and `weft node`: the cluster's processes.

use anyhow::{Context as _, bail};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use weft_coordinator::cluster::CoordinatorService;
use weft_coordinator::service::ApiConfig;
use weft_node::{NodeConfig, run_node};
use weft_wire::pki::{Token, TokenKind};

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

/// The socket address `addr` (HOST:PORT) names.
pub fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("bad address {addr:?} (expected HOST:PORT)"))?
        .next()
        .with_context(|| format!("{addr:?} resolves to no address"))
}

/// A multi-threaded async runtime.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
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
        let config = ApiConfig {
            state_dir: args.state_dir.clone(),
            data_dir: args.data_dir.clone(),
            policy: args.limits.policy(),
            result_limit: args.limits.result_limit(),
        };
        let service = CoordinatorService::start(listen, config)
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
