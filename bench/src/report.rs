//! The comparison's results: per-workload tables, the targets checked against them, and
//! `bench/RESULTS.md` with the machine, versions, data sizes and the command that produced them.

use crate::engines::Engine;
use std::fmt::Write as _;
use std::time::Duration;

/// One engine's figures on one workload (medians of times, the largest peak memory).
pub struct Row {
    /// The engine.
    pub engine: Engine,
    /// Median time of the job alone.
    pub job: Duration,
    /// Median time from process start to exit.
    pub end_to_end: Duration,
    /// Largest peak resident memory over the runs, in bytes.
    pub peak_rss: u64,
}

/// One workload's results.
pub struct WorkloadResult {
    /// Its name.
    pub name: &'static str,
    /// What it computes.
    pub description: &'static str,
    /// Its input, described (size, records, source).
    pub input: String,
    /// One row per engine.
    pub rows: Vec<Row>,
    /// The cluster's first submission (module upload and compilation on the nodes), not
    /// counted in its row.
    pub cluster_first: Option<Duration>,
    /// Whether "no slower than the native loop" is one of its targets (else the native row is
    /// there for reference).
    pub native_target: bool,
}

impl WorkloadResult {
    fn row(&self, engine: Engine) -> Option<&Row> {
        self.rows.iter().find(|r| r.engine == engine)
    }

    /// The table, in Markdown (readable as plain text too).
    pub fn table(&self) -> String {
        let weft = self.row(Engine::WeftRun).map(|r| r.end_to_end.as_secs_f64());
        let mut s = format!("### {}: {}\n\nInput: {}\n\n", self.name, self.description, self.input);
        s.push_str("| engine | job (s) | end to end (s) | peak memory (MiB) | job ÷ weft run end to end |\n");
        s.push_str("|---|---:|---:|---:|---:|\n");
        for r in &self.rows {
            let ratio = weft.map_or("–".into(), |w| format!("{:.2}x", r.job.as_secs_f64() / w));
            let _ = writeln!(
                s,
                "| {} | {:.2} | {:.2} | {:.0} | {ratio} |",
                r.engine.label(),
                r.job.as_secs_f64(),
                r.end_to_end.as_secs_f64(),
                r.peak_rss as f64 / (1 << 20) as f64
            );
        }
        if let Some(first) = self.cluster_first {
            let _ = writeln!(
                s,
                "\nWeft cluster: warm cluster, module cached; the first submission (upload and \
                 compilation on the nodes) took {:.2} s.",
                first.as_secs_f64()
            );
        }
        s
    }

    /// The issues' targets, each with whether it holds: Weft's whole `weft run` process against
    /// PySpark's job times and, where it is a target, the native loop.
    pub fn targets(&self) -> Vec<(String, bool)> {
        let Some(weft) = self.row(Engine::WeftRun).map(|r| r.end_to_end.as_secs_f64()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(r) = self.row(Engine::SparkRdd) {
            let x = r.job.as_secs_f64() / weft;
            out.push((format!("weft run ≥ 5x faster than the PySpark RDD job: {x:.1}x"), x >= 5.0));
        }
        if let Some(r) = self.row(Engine::SparkDf) {
            let x = r.job.as_secs_f64() / weft;
            out.push((format!("weft run faster than the PySpark DataFrame job: {x:.2}x"), x > 1.0));
        }
        if let Some(r) = self.row(Engine::Native).filter(|_| self.native_target) {
            let x = r.end_to_end.as_secs_f64() / weft;
            out.push((format!("weft run no slower than the native loop: {x:.2}x"), x >= 1.0));
        }
        out
    }
}

/// Where and how the results were produced.
pub struct Context {
    /// The command line.
    pub command: String,
    /// Runs per engine and workload.
    pub runs: usize,
    /// Versions of the things compared.
    pub versions: Vec<(String, String)>,
}

/// Cores, memory, CPU model and OS of this machine, one per line.
pub fn machine() -> Vec<(String, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':'])))
        .unwrap_or("unknown")
        .to_string();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
        .unwrap_or_else(|| "unknown".into());
    vec![
        ("cores".into(), std::thread::available_parallelism().map_or(0, |n| n.get()).to_string()),
        ("memory".into(), format!("{:.1} GiB", mem_kib as f64 / (1 << 20) as f64)),
        ("cpu".into(), cpu),
        ("os".into(), format!("{os}, Linux {}", read("/proc/sys/kernel/osrelease").trim())),
    ]
}

/// The whole report, in Markdown.
pub fn markdown(results: &[WorkloadResult], ctx: &Context) -> String {
    let mut s = String::from("# Benchmark results\n\n");
    let _ = write!(
        s,
        "Produced by `bench/run.sh` (see the README). Every engine ran on the same machine, in \
         the same run, on the same generated data, and every engine's answer was checked against \
         the others' before any time was kept. Times are medians; memory is the largest peak \
         over the runs, summed over all of an engine's processes (sampled every {} ms).\n\n",
        crate::measure::SAMPLE_EVERY.as_millis()
    );
    let _ = writeln!(s, "Command: `{}` ({} runs per engine and workload)\n", ctx.command, ctx.runs);
    s.push_str("| machine | |\n|---|---|\n");
    for (k, v) in machine() {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    s.push_str("\n| version | |\n|---|---|\n");
    for (k, v) in &ctx.versions {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    s.push_str(
        "\nColumns: *job* is the job alone (PySpark: after the Spark session is up; weft run: \
         after module compilation; cluster and native: the whole client process); *end to end* \
         is process start to exit; the ratio divides each engine's job time by weft run's end to \
         end time (higher: Weft is faster).\n\n## Results\n\n",
    );
    for r in results {
        s.push_str(&r.table());
        s.push('\n');
    }
    s.push_str("## Targets\n\n");
    for r in results {
        for (text, ok) in r.targets() {
            let _ = writeln!(s, "- {}: {text} — {}", r.name, if ok { "met" } else { "**missed**" });
        }
    }
    s
}
