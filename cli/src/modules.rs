//! `weft module push|list|show|delete`: the coordinator's module registry. A pushed module is
//! uploaded once (content-addressed, as by `weft submit`) and named `TENANT/NAME`; each push of
//! new bytes is a version, `TENANT/NAME@<12 hex digits>`, and `latest` moves to it.

use crate::client::{Client, ClientArgs, ListArgs, print_json};
use crate::server::runtime;
use anyhow::bail;
use std::path::PathBuf;
use std::process::ExitCode;
use weft_wire::protocol::{Request, Response};
use weft_wire::registry::ModuleInfo;

#[derive(clap::Subcommand)]
pub enum ModuleCommand {
    /// Upload a module (if the coordinator lacks its bytes) and name it; prints its version.
    Push(PushArgs),
    /// List the named modules you may use: your own and public ones.
    List(ListArgs),
    /// One named module: versions, sizes, push times, exported functions.
    Show(ShowArgs),
    /// Remove a named module, or one version (NAME@VERSION); refused while a job uses it.
    Delete(ShowArgs),
}

#[derive(clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The name: NAME in your tenant's namespace (TENANT/NAME with the admin token).
    name: String,
    /// The module: a .wasm built with the SDK.
    file: PathBuf,
    /// Let every tenant use it (by name).
    #[arg(long)]
    public: bool,
}

#[derive(clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// [TENANT/]NAME, or [TENANT/]NAME@VERSION for `delete`.
    name: String,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

/// Read a module file, checked to be WebAssembly; with its hash.
pub fn read_module(path: &std::path::Path) -> anyhow::Result<(Vec<u8>, String)> {
    let wasm =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    if !wasm.starts_with(b"\0asm") {
        bail!("{} is not a WebAssembly module", path.display());
    }
    let hash = weft_sandbox::module_hash(&wasm);
    Ok((wasm, hash))
}

/// Make sure the coordinator has the module (for this principal); uploads it if not.
pub async fn ensure_uploaded(client: &Client, wasm: Vec<u8>, hash: &str) -> anyhow::Result<()> {
    let present = matches!(
        client.request(Request::HasModule { hash: hash.to_string() }).await?,
        Response::ModuleStatus { present: true }
    );
    if !present {
        client.request(Request::UploadModule { hash: hash.to_string(), wasm }).await?;
        eprintln!("uploaded module {}", &hash[..12]);
    }
    Ok(())
}

fn modules(response: Response) -> anyhow::Result<Vec<ModuleInfo>> {
    match response {
        Response::Modules(m) => Ok(m),
        other => bail!("unexpected answer {other:?}"),
    }
}

fn print_list(modules: &[ModuleInfo]) {
    for m in modules {
        let public = if m.public { "public" } else { "private" };
        println!(
            "{:<40} {:<8} latest {}  {} version(s)",
            m.name,
            public,
            m.latest,
            m.versions.len()
        );
    }
}

fn print_one(m: &ModuleInfo) {
    println!("{} ({})", m.name, if m.public { "public" } else { "private" });
    for v in &m.versions {
        let latest = if v.version == m.latest { "  latest" } else { "" };
        println!(
            "  @{}  {:>10} bytes  pushed at {} (unix){latest}",
            v.version, v.bytes, v.pushed_unix
        );
    }
    if !m.exports.is_empty() {
        println!("  exports: {}", m.exports.join(", "));
    }
    if !m.udfs.is_empty() {
        println!("  UDFs:");
        for udf in &m.udfs {
            println!("    {udf}");
        }
    }
}

/// Run a `weft module` command.
pub fn run(command: ModuleCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            ModuleCommand::Push(args) => {
                let (wasm, hash) = read_module(&args.file)?;
                let client = Client::connect(&args.client).await?;
                ensure_uploaded(&client, wasm, &hash).await?;
                let request = Request::PushModule { name: args.name, hash, public: args.public };
                match client.request(request).await? {
                    Response::ModulePushed { version } => println!("{version}"),
                    other => bail!("unexpected answer {other:?}"),
                }
            }
            ModuleCommand::List(args) => {
                let client = Client::connect(&args.client).await?;
                let list = modules(client.request(Request::ListModules).await?)?;
                match args.json {
                    true => print_json(&list)?,
                    false => print_list(&list),
                }
            }
            ModuleCommand::Show(args) => {
                let client = Client::connect(&args.client).await?;
                let found =
                    modules(client.request(Request::ShowModule { name: args.name }).await?)?;
                match args.json {
                    true => print_json(&found)?,
                    false => found.iter().for_each(print_one),
                }
            }
            ModuleCommand::Delete(args) => {
                let client = Client::connect(&args.client).await?;
                let gone =
                    modules(client.request(Request::DeleteModule { name: args.name }).await?)?;
                for m in gone {
                    let versions: Vec<&str> =
                        m.versions.iter().map(|v| v.version.as_str()).collect();
                    eprintln!("deleted {} version(s) {}", m.name, versions.join(", "));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
