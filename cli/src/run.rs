//! `weft run`: a job on the embedded engine.

use anyhow::Context as _;
use std::path::PathBuf;
use std::process::ExitCode;
use weft_coordinator::{LocalJob, run_local};
use weft_sandbox::ModuleCache;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The job: a .wasm built with `cargo build --release --target wasm32-wasip1`.
    job: PathBuf,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Directory the job's paths are relative to; it may read and write nothing outside it.
    #[arg(long, default_value = ".")]
    data_dir: PathBuf,
    #[command(flatten)]
    limits: crate::limits::LimitArgs,
    /// Largest split of a text or CSV input, in MiB (inputs are split so that every worker gets
    /// several splits).
    #[arg(
        long,
        default_value_t = weft_storage::input::DEFAULT_SPLIT_BYTES >> 20,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    split_size: u64,
    /// Keep compiled modules here, so that the next run of the same module skips compilation
    /// [default: $WEFT_CACHE_DIR/modules, else ~/.cache/weft/modules].
    #[arg(long, value_name = "DIR", conflicts_with = "no_module_cache")]
    module_cache: Option<PathBuf>,
    /// Compile the module every time; use no module cache.
    #[arg(long)]
    no_module_cache: bool,
    /// A UDF module the job may bind, as NAME=FILE.wasm (NAME as the job names it, e.g.
    /// `acme/geo=geo.wasm` for `ctx.udf("acme/geo@latest", …)`); repeat for several.
    #[arg(long = "udf", value_name = "NAME=FILE", value_parser = parse_udf)]
    udfs: Vec<(String, PathBuf)>,
    /// Print the module's compile (or cache load) time and the job's own time on stderr when it
    /// ends.
    #[arg(long)]
    timings: bool,
    /// Arguments for the job, after `--`.
    #[arg(last = true)]
    args: Vec<String>,
}

/// `weft run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let wasm =
        std::fs::read(&args.job).with_context(|| format!("cannot read {}", args.job.display()))?;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let policy = args.limits.policy();
    let result_limit = args.limits.result_limit();
    let module_cache =
        match (args.no_module_cache, args.module_cache.or_else(ModuleCache::default_dir)) {
            (false, Some(dir)) => match ModuleCache::open(&dir) {
                Ok(cache) => Some(cache),
                Err(e) => {
                    eprintln!("weft: warning: {e}; compiling without it");
                    None
                }
            },
            _ => None,
        };
    let mut udfs = Vec::with_capacity(args.udfs.len());
    for (name, path) in args.udfs {
        let wasm = std::fs::read(&path)
            .with_context(|| format!("cannot read UDF module {name} from {}", path.display()))?;
        udfs.push((name, wasm));
    }
    let job = LocalJob {
        wasm,
        args: args.args,
        workers,
        data_dir: args.data_dir,
        policy,
        split_bytes: Some(args.split_size << 20),
        module_cache,
        result_limit,
        observer: Box::new(crate::progress::Progress::default()),
        udfs,
    };
    let outcome = run_local(job).with_context(|| format!("job {} failed", args.job.display()))?;
    if args.timings {
        eprintln!(
            "weft: module compiled in {:.3} s, job ran in {:.3} s",
            outcome.compile_time.as_secs_f64(),
            outcome.job_time.as_secs_f64()
        );
    }
    if outcome.exit_code == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    match outcome.failed_action {
        Some(cause) if !outcome.cause_shown => eprintln!("weft: job failed: {cause}"),
        _ => eprintln!("weft: job exited with status {}", outcome.exit_code),
    }
    Ok(ExitCode::from(outcome.exit_code.clamp(1, 255) as u8))
}

/// `NAME=FILE` of `--udf`.
fn parse_udf(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, file)) if !name.is_empty() && !name.contains('@') && !file.is_empty() => {
            Ok((name.to_string(), PathBuf::from(file)))
        }
        _ => Err(format!("{text:?}: expected NAME=FILE.wasm, the name without @VERSION")),
    }
}
