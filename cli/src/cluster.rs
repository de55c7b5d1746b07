//! `weft coordinator`, `weft node` and `weft status`: the cluster processes and their client.

use anyhow::{Context as _, bail};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use weft_coordinator::cluster::CoordinatorService;
use weft_runtime::node::{NodeConfig, run_node};
use weft_wire::pki::{Token, TokenKind};
use weft_wire::protocol::{Request, Response};
use weft_wire::transport::{self, ServerTrust};

#[derive(clap::Args)]
pub struct CoordinatorArgs {
    /// Address to listen on (UDP, QUIC), e.g. 0.0.0.0:7070; nothing else is opened.
    #[arg(long)]
    listen: String,
    /// Where the cluster CA, certificates and tokens are kept (created on first start).
    #[arg(long)]
    state_dir: PathBuf,
    /// Data directory for jobs' drivers (nodes have their own).
    #[arg(long, default_value = ".")]
    data_dir: PathBuf,
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
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The coordinator's address.
    #[arg(long)]
    coordinator: String,
    /// The admin token (the coordinator's `admin-token` file).
    #[arg(long, env = "WEFT_TOKEN", hide_env_values = true)]
    token: String,
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
        let service = CoordinatorService::start(listen, &args.state_dir)
            .with_context(|| format!("cannot start the coordinator on {listen}"))?;
        let bound = service.local_addr()?;
        println!("coordinator listening on {bound}");
        println!(
            "join token:  {}",
            args.state_dir.join("join-token").display()
        );
        println!(
            "admin token: {}",
            args.state_dir.join("admin-token").display()
        );
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
    let config = NodeConfig {
        coordinator,
        join_token,
        slots,
        name,
        data_dir: args.data_dir,
        work_dir: args.work_dir,
    };
    runtime()?.block_on(async {
        tokio::select! {
            result = run_node(config) => result.context("the node stopped")?,
            _ = tokio::signal::ctrl_c() => println!("node stopping"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `weft status`.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let addr = resolve(&args.coordinator)?;
    let token = Token::parse(&args.token, TokenKind::Admin)?;
    runtime()?.block_on(async {
        let endpoint =
            transport::client_endpoint(ServerTrust::PinnedCa(token.ca_fingerprint.clone()), None)?;
        let conn = transport::connect(&endpoint, addr).await?;
        let response = transport::request(
            &conn,
            &Request::ClusterStatus {
                token_secret: token.secret,
            },
        )
        .await?;
        conn.close(0u32.into(), b"done");
        match response {
            Response::ClusterStatus { nodes } => {
                let alive = nodes.iter().filter(|n| n.alive).count();
                let slots: u32 = nodes.iter().filter(|n| n.alive).map(|n| n.slots).sum();
                println!("{alive} node(s) alive, {slots} slot(s)");
                for n in nodes {
                    let state = if n.alive { "alive" } else { "lost" };
                    println!(
                        "{:<10} {:<6} {:>3} slots  {:<24} last seen {} ms ago",
                        n.id, state, n.slots, n.name, n.last_seen_ms
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Response::Refused { reason } => bail!("the coordinator refused: {reason}"),
            other => bail!("unexpected answer: {other:?}"),
        }
    })
}
