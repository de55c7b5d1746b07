//! `weft tenant create|list|update|delete|rotate-token`: managing a cluster's tenants with the
//! admin token. `create` and `rotate-token` print the tenant's token once, on stdout alone, so
//! that a script can capture it (`TOKEN=$(weft tenant create acme …)`); everything else goes to
//! stderr.

use crate::client::{Client, ClientArgs, ListArgs, print_json};
use crate::server::runtime;
use anyhow::bail;
use std::process::ExitCode;
use weft_wire::protocol::{Request, Response};
use weft_wire::tenancy::{TenantChange, TenantInfo, TenantLimits};

#[derive(clap::Subcommand)]
pub enum TenantCommand {
    /// Add a tenant and print its token (shown this once).
    Create(CreateArgs),
    /// List the tenants with their caps.
    List(ListArgs),
    /// Change a tenant's caps, weight or data directory.
    Update(UpdateArgs),
    /// Remove a tenant (refused while it has running jobs; its data directory stays).
    Delete(NameArgs),
    /// Give a tenant a new token and print it; the old one stops working at once.
    RotateToken(NameArgs),
}

/// A cap: a number, or `unlimited` for none.
#[derive(Clone, Copy, Debug)]
pub struct Cap(Option<u64>);

fn parse_cap(text: &str) -> Result<Cap, String> {
    if text == "unlimited" {
        return Ok(Cap(None));
    }
    text.parse::<u64>()
        .map(|n| Cap(Some(n)))
        .map_err(|_| format!("expected a number or `unlimited`, not {text:?}"))
}

impl Cap {
    fn u32(self, flag: &str) -> anyhow::Result<Option<u32>> {
        self.0
            .map(|n| u32::try_from(n).map_err(|_| anyhow::anyhow!("{flag} {n} is too large")))
            .transpose()
    }
}

#[derive(clap::Args)]
pub struct CapArgs {
    /// Most tasks the tenant runs at once over the cluster (or `unlimited`).
    #[arg(long, value_parser = parse_cap)]
    slots: Option<Cap>,
    /// Most jobs running at once; more wait in a queue (or `unlimited`).
    #[arg(long, value_parser = parse_cap)]
    max_running_jobs: Option<Cap>,
    /// Most memory a job's tasks may use, MiB (or `unlimited`).
    #[arg(long, value_parser = parse_cap)]
    memory_limit: Option<Cap>,
    /// Longest a job's task may run, seconds (or `unlimited`).
    #[arg(long, value_parser = parse_cap)]
    task_timeout: Option<Cap>,
    /// Share of free slots against other tenants (default 1).
    #[arg(long)]
    weight: Option<u32>,
    /// Its data root, an existing directory as the coordinator and nodes see it (default: a
    /// directory of its name inside the coordinator's data directory, made now).
    #[arg(long)]
    data_dir: Option<String>,
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The tenant's name: a-z, 0-9, '-' and '_'.
    name: String,
    #[command(flatten)]
    caps: CapArgs,
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The tenant.
    name: String,
    #[command(flatten)]
    caps: CapArgs,
}

#[derive(clap::Args)]
pub struct NameArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The tenant.
    name: String,
}

impl CapArgs {
    fn change(&self) -> anyhow::Result<TenantChange> {
        Ok(TenantChange {
            slots: self.slots.map(|c| c.u32("--slots")).transpose()?,
            max_running_jobs: self
                .max_running_jobs
                .map(|c| c.u32("--max-running-jobs"))
                .transpose()?,
            memory_limit_mib: self.memory_limit.map(|c| c.0),
            task_timeout_secs: self.task_timeout.map(|c| c.0),
            weight: self.weight,
            data_dir: self.data_dir.clone(),
        })
    }
}

fn print_tenants(tenants: &[TenantInfo]) {
    let cap = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    println!(
        "{:<20} {:>6} {:>5} {:>8} {:>12} {:>12} {:>8}  data",
        "tenant", "weight", "slots", "max jobs", "memory MiB", "timeout s", "running"
    );
    for t in tenants {
        let l = &t.limits;
        println!(
            "{:<20} {:>6} {:>5} {:>8} {:>12} {:>12} {:>8}  {}",
            t.name,
            l.weight,
            cap(l.slots.map(u64::from)),
            cap(l.max_running_jobs.map(u64::from)),
            cap(l.memory_limit_mib),
            cap(l.task_timeout_secs),
            t.running_jobs,
            t.data_dir
        );
    }
}

fn token(response: Response) -> anyhow::Result<(String, String)> {
    match response {
        Response::TenantToken { name, token } => Ok((name, token)),
        other => bail!("unexpected answer {other:?}"),
    }
}

fn tenants(response: Response) -> anyhow::Result<Vec<TenantInfo>> {
    match response {
        Response::Tenants(t) => Ok(t),
        other => bail!("unexpected answer {other:?}"),
    }
}

/// Run a `weft tenant` command.
pub fn run(command: TenantCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            TenantCommand::Create(args) => {
                let change = args.caps.change()?;
                let limits = TenantLimits {
                    weight: change.weight.unwrap_or(1),
                    ..change.apply(&TenantLimits::default())
                };
                let client = Client::connect(&args.client).await?;
                let request =
                    Request::CreateTenant { name: args.name, limits, data_dir: change.data_dir };
                let (name, token) = token(client.request(request).await?)?;
                eprintln!("created tenant {name}; its token (shown this once):");
                println!("{token}");
            }
            TenantCommand::List(args) => {
                let client = Client::connect(&args.client).await?;
                let list = tenants(client.request(Request::ListTenants).await?)?;
                match args.json {
                    true => print_json(&list)?,
                    false => print_tenants(&list),
                }
            }
            TenantCommand::Update(args) => {
                let change = args.caps.change()?;
                if change == TenantChange::default() {
                    bail!("nothing to change: give --slots, --weight, --data-dir, …");
                }
                let client = Client::connect(&args.client).await?;
                let request = Request::UpdateTenant { name: args.name, change };
                print_tenants(&tenants(client.request(request).await?)?);
            }
            TenantCommand::Delete(args) => {
                let client = Client::connect(&args.client).await?;
                let request = Request::DeleteTenant { name: args.name };
                let gone = tenants(client.request(request).await?)?;
                for t in gone {
                    eprintln!(
                        "deleted tenant {} (its data directory {} stays)",
                        t.name, t.data_dir
                    );
                }
            }
            TenantCommand::RotateToken(args) => {
                let client = Client::connect(&args.client).await?;
                let request = Request::RotateTenantToken { name: args.name };
                let (name, token) = token(client.request(request).await?)?;
                eprintln!("new token of tenant {name} (the old one no longer works):");
                println!("{token}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
