//! The engines `weft-bench compare` runs side by side, and how each is started, timed and asked
//! for its answer. Every engine is a child process measured by [`crate::measure`]; each reports
//! the time of the job alone its own way:
//!
//! - PySpark (RDD and DataFrame APIs, `local[2]`): the script times the job after the Spark
//!   session is up and prints `job_seconds=` on stderr;
//! - `weft run` with 2 workers: `--timings` prints the job's time after module compilation; run
//!   with `--no-module-cache`, so that every run's end-to-end time includes compiling the module
//!   (as the targets ask), although users' later runs would load it from the cache in ~3 ms;
//! - the Weft cluster (coordinator + 2 single-slot nodes on loopback, started once and kept warm):
//!   `weft submit --follow`, whose whole run is the job;
//! - native Rust: `weft-bench native`, a single-threaded loop; its whole run is the job.

use crate::measure::{self, Measured};
use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use weft_tests::cluster::{Coordinator, Process};

/// One engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// PySpark RDD API with Python lambdas.
    SparkRdd,
    /// PySpark DataFrame API.
    SparkDf,
    /// `weft run`, 2 workers.
    WeftRun,
    /// A Weft cluster on loopback: coordinator + 2 nodes.
    WeftCluster,
    /// The same logic in a native single-threaded loop.
    Native,
}

impl Engine {
    /// Every engine, in report order.
    pub const ALL: [Engine; 5] =
        [Engine::SparkRdd, Engine::SparkDf, Engine::WeftRun, Engine::WeftCluster, Engine::Native];

    /// Its name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Engine::SparkRdd => "PySpark RDD",
            Engine::SparkDf => "PySpark DataFrame",
            Engine::WeftRun => "weft run",
            Engine::WeftCluster => "Weft cluster",
            Engine::Native => "native Rust",
        }
    }

    /// Whether it needs Python with pyspark and Java.
    pub fn is_spark(self) -> bool {
        matches!(self, Engine::SparkRdd | Engine::SparkDf)
    }
}

/// What a workload needs to be run by any engine.
pub struct JobSpec<'a> {
    /// The workload's name (`wordcount`, `weblog`, …): the native subcommand's and the PySpark
    /// script's.
    pub workload: &'a str,
    /// The Weft guest module's name.
    pub module: &'a str,
    /// The input file's name inside the data directory.
    pub file: &'a str,
    /// The top-N argument, if the workload has one.
    pub top: Option<usize>,
    /// Extra environment for the PySpark script.
    pub env: Vec<(&'static str, String)>,
    /// More files or directories of the data directory the job takes, after its input.
    pub extra: Vec<&'a str>,
    /// The output directory (one of `extra`) when the answer is what the job wrote there: it is
    /// removed before each run, and checked and removed after it.
    pub output: Option<&'a str>,
}

/// One measured run: its times, memory and answer.
pub struct Run {
    /// The job alone.
    pub job: Duration,
    /// The whole process, start to exit.
    pub end_to_end: Duration,
    /// Peak resident memory of the engine's processes, in bytes.
    pub peak_rss: u64,
    /// Its answer (stdout).
    pub answer: String,
}

/// Everything the engines need: binaries, the data directory, the cluster if one runs.
pub struct Engines {
    /// The `weft` binary.
    pub weft: PathBuf,
    /// Where guest modules are (`wasm32-wasip1/release`).
    pub modules: PathBuf,
    /// The directory holding the inputs (also the cluster's data directory).
    pub data: PathBuf,
    /// Python of an environment with pyspark, if the PySpark engines run.
    pub python: Option<PathBuf>,
    /// The running cluster, if it is one of the engines.
    pub cluster: Option<Cluster>,
}

/// A coordinator and two single-slot nodes, killed on drop.
pub struct Cluster {
    coordinator: Coordinator,
    nodes: Vec<Process>,
}

impl Cluster {
    /// Start a coordinator and two nodes under `dir` (data in `dir/data`) and wait until both
    /// nodes are alive.
    pub fn start(dir: &Path) -> anyhow::Result<Cluster> {
        let coordinator = Coordinator::start(dir);
        let token = coordinator.join_token();
        let nodes: Vec<Process> =
            (1..=2).map(|i| coordinator.node(dir, &format!("n{i}"), &token, 1)).collect();
        for n in &nodes {
            n.wait_for("joined the cluster", Duration::from_secs(30));
        }
        let started = std::time::Instant::now();
        while coordinator.status().alive() < 2 {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the cluster's nodes did not become alive within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Cluster { coordinator, nodes })
    }

    /// The coordinator, for submitting jobs and reading its status.
    pub fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.coordinator.process.pid()];
        pids.extend(self.nodes.iter().map(Process::pid));
        pids
    }
}

impl Engines {
    /// Run `spec` once on `engine`.
    pub fn run(&self, engine: Engine, spec: &JobSpec) -> anyhow::Result<Run> {
        let module = self.modules.join(format!("{}.wasm", spec.module));
        // Weft jobs name files inside the data directory; the other engines get full paths.
        let mut job_args = vec![spec.file.to_string()];
        job_args.extend(spec.extra.iter().map(|f| f.to_string()));
        job_args.extend(spec.top.map(|n| n.to_string()));
        let input = self.data.join(spec.file);
        let extra: Vec<PathBuf> = spec.extra.iter().map(|f| self.data.join(f)).collect();
        let output = spec.output.map(|o| self.data.join(o));
        if let Some(dir) = &output {
            remove_output(dir)?;
        }
        let (mut cmd, watch) = match engine {
            Engine::Native => {
                let mut cmd = Command::new(std::env::current_exe()?);
                cmd.arg("native").arg(spec.workload).arg(&input).args(&extra);
                cmd.args(["--top", &spec.top.unwrap_or(10).to_string()]);
                (cmd, Vec::new())
            }
            Engine::WeftRun => {
                let mut cmd = Command::new(&self.weft);
                cmd.arg("run").arg(&module);
                cmd.args(["--workers", "2", "--timings", "--no-module-cache", "--data-dir"]);
                cmd.arg(&self.data).arg("--").args(&job_args);
                (cmd, Vec::new())
            }
            Engine::WeftCluster => {
                let cluster = self.cluster.as_ref().context("the cluster is not running")?;
                let c = &cluster.coordinator;
                let mut cmd = Command::new(&self.weft);
                cmd.args(["submit", "--coordinator", &c.addr, "--token", &c.admin_token()]);
                cmd.arg(&module).args(["--follow", "--"]).args(&job_args);
                (cmd, cluster.pids())
            }
            Engine::SparkRdd | Engine::SparkDf => {
                let python = self.python.as_ref().context("no Python with pyspark")?;
                let script = weft_tests::repo_root()
                    .join("bench/pyspark")
                    .join(format!("{}.py", spec.workload));
                let mut cmd = Command::new(python);
                cmd.arg(script);
                cmd.args(["--api", if engine == Engine::SparkRdd { "rdd" } else { "df" }]);
                cmd.args(["--top", &spec.top.unwrap_or(10).to_string()]).arg(&input).args(&extra);
                cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
                (cmd, Vec::new())
            }
        };
        let m = measure::run(&mut cmd, &watch)
            .with_context(|| format!("{} on {}", engine.label(), spec.workload))?;
        let job = job_time(engine, &m)?;
        let answer = match &output {
            Some(dir) => {
                let answer = crate::records::check_sorted(dir).with_context(|| {
                    format!("{} on {}: checking its output", engine.label(), spec.workload)
                })?;
                remove_output(dir)?;
                answer
            }
            None => m.stdout,
        };
        Ok(Run { job, end_to_end: m.wall, peak_rss: m.peak_rss, answer })
    }
}

fn remove_output(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// The job's own time, as the engine reported it.
fn job_time(engine: Engine, m: &Measured) -> anyhow::Result<Duration> {
    let reported = |prefix: &str, suffix: &str| -> anyhow::Result<Duration> {
        let seconds = m
            .stderr
            .lines()
            .find_map(|l| l.split(prefix).nth(1))
            .and_then(|rest| rest.split(suffix).next())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .with_context(|| format!("{} did not report its job time", engine.label()))?;
        Ok(Duration::from_secs_f64(seconds))
    };
    match engine {
        Engine::SparkRdd | Engine::SparkDf => reported("job_seconds=", "\n"),
        Engine::WeftRun => reported("job ran in ", " s"),
        Engine::WeftCluster | Engine::Native => Ok(m.wall),
    }
}
