//! `weft-bench compare`: every workload on every engine, side by side, in the same run, on the
//! same generated data. Answers are checked against each other before any time is kept: an
//! engine that computes something different is an error, not a number.
//!
//! The workloads are in [`crate::workloads`].

use crate::engines::{Cluster, Engine, Engines, Run};
use crate::report::{self, Row, WorkloadResult};
use crate::workloads::{Inputs, Workload};
use anyhow::{Context as _, bail};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `compare`.
#[derive(clap::Args)]
pub struct Args {
    /// Size of each workload's input, in MB (except the sort's).
    #[arg(long, default_value_t = 256)]
    size_mb: u64,
    /// Records the sort workload sorts.
    #[arg(long, default_value_t = 20_000_000)]
    sort_records: u64,
    /// Runs of each engine on each workload; medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Workloads to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Workload::ALL)]
    workloads: Vec<Workload>,
    /// Engines to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Engine::ALL)]
    engines: Vec<Engine>,
    /// Python of an environment with pyspark (default: the one `bench/run.sh` sets up).
    #[arg(long, env = "WEFT_BENCH_PYTHON")]
    python: Option<PathBuf>,
    /// Leave the PySpark engines out, with a notice, when Python with pyspark or Java is missing
    /// (instead of failing).
    #[arg(long)]
    spark_optional: bool,
    /// nycflights13 rows to repeat (default: the shared data folder's full file when it is next to
    /// the repository, else the sample bundled with the flights example).
    #[arg(long)]
    flights_source: Option<PathBuf>,
    /// Write the results, in Markdown, to this file.
    #[arg(long)]
    results: Option<PathBuf>,
    /// Where to put generated data and the cluster's state (default: a temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let target = weft_tests::target_dir();
    let weft = target.join("release/weft");
    let modules = target.join("wasm32-wasip1/release");
    for p in [weft.clone()]
        .into_iter()
        .chain(args.workloads.iter().map(|w| modules.join(format!("{}.wasm", w.spec().module))))
    {
        anyhow::ensure!(
            p.exists(),
            "{} is missing: run bench/run.sh, which builds it",
            p.display()
        );
    }
    let mut engines_wanted = args.engines.clone();
    let mut versions = vec![("weft".to_string(), weft_version())];
    versions.push(("wasmtime".into(), locked_version("wasmtime")));
    let python = if engines_wanted.iter().any(|e| e.is_spark()) {
        match spark_setup(args.python.clone()) {
            Ok((python, spark_versions)) => {
                versions.extend(spark_versions);
                Some(python)
            }
            Err(e) if args.spark_optional => {
                eprintln!("NOTICE: leaving out the PySpark engines: {e:#}");
                engines_wanted.retain(|e| !e.is_spark());
                None
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    versions.push(("rustc".into(), command_version("rustc", &["-V"])));

    let dir = crate::corpus::Scratch::new(args.work_dir.clone(), "compare")?;
    let data = dir.path.join("data");
    std::fs::create_dir_all(&data)?;
    let flights_source = args.flights_source.clone().unwrap_or_else(|| weft_tests::flights_csv().0);
    let airlines_source = crate::workloads::airlines_csv();
    let sizes = Inputs {
        size: args.size_mb * 1_000_000,
        sort_records: args.sort_records,
        flights_source: &flights_source,
        airlines_source: &airlines_source,
    };
    let mut inputs = Vec::new();
    for w in &args.workloads {
        let t = Instant::now();
        let input = w.generate(&data, &sizes)?;
        eprintln!("{}: {input} (generated in {:.1?})", w.name(), t.elapsed());
        inputs.push(input);
    }
    let cluster = if engines_wanted.contains(&Engine::WeftCluster) {
        eprintln!("starting a coordinator and 2 nodes on loopback");
        Some(Cluster::start(&dir.path)?)
    } else {
        None
    };
    let engines = Engines { weft, modules, data, python, cluster };

    let mut results = Vec::new();
    for (w, input) in args.workloads.iter().zip(inputs) {
        results.push(run_workload(&engines, *w, input, &engines_wanted, args.runs.max(1))?);
    }
    let ctx = report::Context { command, runs: args.runs.max(1), versions };
    let markdown = report::markdown(&results, &ctx);
    println!("{markdown}");
    if let Some(path) = &args.results {
        let tmp = path.with_extension("md.tmp");
        std::fs::write(&tmp, &markdown)?;
        std::fs::rename(&tmp, path)?;
        eprintln!("results written to {}", path.display());
    }
    Ok(())
}

/// Every engine on one workload, `runs` times (engines interleaved so that a noisy moment of the
/// machine does not fall on one engine only); answers checked against the first one.
fn run_workload(
    engines: &Engines,
    w: Workload,
    input: String,
    wanted: &[Engine],
    runs: usize,
) -> anyhow::Result<WorkloadResult> {
    let spec = w.spec();
    let mut reference: Option<(Engine, String)> = None;
    let mut check = |engine: Engine, run: &Run| -> anyhow::Result<()> {
        match &reference {
            None => reference = Some((engine, run.answer.clone())),
            Some((first, expected)) => {
                if let Some(diff) = crate::answer::difference(expected, &run.answer) {
                    bail!(
                        "{}: {} and {} computed different answers ({diff})\n--- {}\n{expected}\n--- {}\n{}",
                        w.name(),
                        first.label(),
                        engine.label(),
                        first.label(),
                        engine.label(),
                        run.answer
                    );
                }
            }
        }
        Ok(())
    };
    let mut cluster_first = None;
    if wanted.contains(&Engine::WeftCluster) {
        let first = engines.run(Engine::WeftCluster, &spec)?;
        check(Engine::WeftCluster, &first)?;
        cluster_first = Some(first.end_to_end);
    }
    let mut runs_of: Vec<(Engine, Vec<Run>)> = wanted.iter().map(|e| (*e, Vec::new())).collect();
    for i in 0..runs {
        for (engine, done) in &mut runs_of {
            let run = engines.run(*engine, &spec)?;
            check(*engine, &run)?;
            eprintln!(
                "{} run {}/{runs}: {:<18} job {:>7.2} s, end to end {:>7.2} s, peak {:>6.0} MiB",
                w.name(),
                i + 1,
                engine.label(),
                run.job.as_secs_f64(),
                run.end_to_end.as_secs_f64(),
                run.peak_rss as f64 / (1 << 20) as f64
            );
            done.push(run);
        }
    }
    let rows = runs_of
        .into_iter()
        .map(|(engine, runs)| Row {
            engine,
            job: median(runs.iter().map(|r| r.job).collect()),
            end_to_end: median(runs.iter().map(|r| r.end_to_end).collect()),
            peak_rss: runs.iter().map(|r| r.peak_rss).max().unwrap_or(0),
        })
        .collect();
    eprintln!("{}: all engines computed the same answer", w.name());
    Ok(WorkloadResult {
        name: w.name(),
        description: w.description(),
        input,
        rows,
        cluster_first,
        native_target: w.native_target(),
    })
}

fn median(mut times: Vec<Duration>) -> Duration {
    crate::corpus::median(&mut times)
}

/// The Python to use, checked: pyspark importable, Java present. Returns it and the versions.
fn spark_setup(chosen: Option<PathBuf>) -> anyhow::Result<(PathBuf, Vec<(String, String)>)> {
    let python = chosen.unwrap_or_else(default_python);
    let out = Command::new(&python)
        .args([
            "-c",
            "import pyspark, sys; print(pyspark.__version__); print(sys.version.split()[0])",
        ])
        .output()
        .with_context(|| {
            format!("cannot run {} (run bench/run.sh, which sets it up)", python.display())
        })?;
    if !out.status.success() {
        bail!(
            "{} cannot import pyspark (run bench/run.sh, which sets it up): {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let spark = lines.next().unwrap_or("?").to_string();
    let py = lines.next().unwrap_or("?").to_string();
    let java = Command::new("java")
        .arg("-version")
        .output()
        .context("java not found: PySpark needs Java 17 or later")?;
    let java = String::from_utf8_lossy(&java.stderr).lines().next().unwrap_or("?").to_string();
    Ok((python, vec![("pyspark".into(), spark), ("python".into(), py), ("java".into(), java)]))
}

/// Where `bench/run.sh` puts the virtual environment.
pub fn default_python() -> PathBuf {
    let cache = std::env::var_os("WEFT_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/weft")
    });
    cache.join("bench-venv/bin/python")
}

fn command_version(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn weft_version() -> String {
    let repo = weft_tests::repo_root();
    let rev = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        rev.unwrap_or_else(|| "not a git checkout".into())
    )
}

/// A dependency's version from the workspace's Cargo.lock.
fn locked_version(name: &str) -> String {
    let lock = include_str!("../../Cargo.lock");
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.split(&needle)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("unknown")
        .to_string()
}
