//! `weft-bench cluster`: a coordinator and two single-slot nodes on loopback against `weft run`
//! with two workers, in the same run and on the same data:
//! 1. word count over the generated corpus (answers compared);
//! 2. node-to-node shuffle throughput: a job whose every line is a shuffle key, throughput from
//!    the bytes the nodes fetched and the time they spent fetching (their counters);
//! 3. submit-to-result latency of a tiny job on a warm cluster (module cached), median of N.

use crate::corpus::{Scratch, artifacts, generate, median};
use crate::engines::Cluster;
use anyhow::{Context as _, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use weft_tests::cluster::Coordinator;

/// Options of `cluster`.
#[derive(clap::Args)]
pub struct Args {
    /// Size of the generated text, in MB.
    #[arg(long, default_value_t = 200)]
    size_mb: u64,
    /// Runs of each word-count side; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Submissions of the tiny job; the median latency is reported.
    #[arg(long, default_value_t = 20)]
    latency_runs: usize,
    /// Where to put the corpus and the cluster's state (default: a temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

fn weft_run(
    weft: &Path,
    module: &Path,
    data: &Path,
    args: &[&str],
) -> anyhow::Result<(Duration, String)> {
    let t = Instant::now();
    let out = Command::new(weft)
        .arg("run")
        .arg(module)
        .args(["--workers", "2", "--data-dir"])
        .arg(data)
        .arg("--")
        .args(args)
        .output()?;
    let elapsed = t.elapsed();
    ensure!(out.status.success(), "weft run failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok((elapsed, String::from_utf8(out.stdout)?))
}

fn submit(c: &Coordinator, module: &Path, args: &[&str]) -> anyhow::Result<(Duration, String)> {
    let mut all = vec![module.to_str().context("module path")?, "--follow", "--"];
    all.extend_from_slice(args);
    let t = Instant::now();
    let run = c.client("submit", &all);
    let elapsed = t.elapsed();
    ensure!(run.code == 0, "weft submit failed: {}", run.stderr);
    Ok((elapsed, run.stdout))
}

/// Sum of a counter over the nodes, from `weft status --json`.
fn node_counter(c: &Coordinator, key: &str) -> u64 {
    c.status().nodes_sum(key)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (weft, word_count) = artifacts("word_count")?;
    let (_, distinct) = artifacts("distinct_lines")?;
    let (_, tiny) = artifacts("tiny_sum")?;
    let dir = Scratch::new(args.work_dir.clone(), "cluster")?;
    let data = dir.path.join("data");
    std::fs::create_dir_all(&data)?;
    let (lines, bytes) = generate(&data.join("corpus.txt"), args.size_mb << 20)?;
    let mb = bytes as f64 / 1e6;
    eprintln!("generated {mb:.0} MB, {lines} lines");

    let cluster = Cluster::start(&dir.path)?;
    let c = cluster.coordinator();

    // 1. Word count: cluster vs weft run, alternating, answers compared.
    let (first, first_answer) = submit(c, &word_count, &["corpus.txt", "10"])?;
    eprintln!("cluster, first submission (upload + compile on nodes): {first:.2?}");
    let (mut local, mut cluster) = (Vec::new(), Vec::new());
    for run in 0..args.runs.max(1) {
        let (t, answer) = weft_run(&weft, &word_count, &data, &["corpus.txt", "10"])?;
        if answer != first_answer {
            bail!(
                "weft run and the cluster disagree\n--- run\n{answer}\n--- cluster\n{first_answer}"
            );
        }
        local.push(t);
        let (t2, answer) = submit(c, &word_count, &["corpus.txt", "10"])?;
        if answer != first_answer {
            bail!("two cluster runs disagree");
        }
        cluster.push(t2);
        eprintln!("run {run}: weft run {t:.2?}, cluster {t2:.2?}");
    }
    let (local, cluster) = (median(&mut local), median(&mut cluster));

    // 2. Shuffle throughput, from the nodes' own counters around one shuffle-heavy job.
    std::thread::sleep(Duration::from_millis(1500));
    let (bytes0, micros0) =
        (node_counter(c, "shuffle_bytes_fetched"), node_counter(c, "shuffle_fetch_micros"));
    let (shuffle_job, distinct_answer) = submit(c, &distinct, &["corpus.txt"])?;
    let (_, local_distinct) = weft_run(&weft, &distinct, &data, &["corpus.txt"])?;
    ensure!(
        distinct_answer == local_distinct,
        "distinct lines: cluster {distinct_answer:?} vs weft run {local_distinct:?}"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let fetched = node_counter(c, "shuffle_bytes_fetched") - bytes0;
    let fetch_secs = (node_counter(c, "shuffle_fetch_micros") - micros0) as f64 / 1e6;
    let relayed = c.status().coordinator("shuffle_bytes_relayed");

    // 3. Tiny job latency on the warm cluster.
    let (_, warm) = submit(c, &tiny, &[])?;
    ensure!(warm.trim() == "500500", "tiny job answered {warm:?}");
    let mut latencies = Vec::new();
    for _ in 0..args.latency_runs.max(1) {
        let (t, answer) = submit(c, &tiny, &[])?;
        ensure!(answer.trim() == "500500", "tiny job answered {answer:?}");
        latencies.push(t);
    }
    let latency = median(&mut latencies);

    println!(
        "cluster benchmark: coordinator + 2 one-slot nodes on loopback vs `weft run --workers 2`"
    );
    println!(
        "1. word count over {mb:.0} MB ({lines} lines), median of {} runs, answers identical",
        args.runs.max(1)
    );
    println!("   weft run, 2 workers      {:>8.2} s", local.as_secs_f64());
    println!(
        "   cluster, 2 nodes         {:>8.2} s   (first submission, with upload and compile: {:.2} s)",
        cluster.as_secs_f64(),
        first.as_secs_f64()
    );
    println!("   cluster / weft run time: {:.2}x", cluster.as_secs_f64() / local.as_secs_f64());
    println!(
        "2. shuffle, distinct lines: {:.0} MB fetched node to node in {:.2} s of fetching = {:.0} MB/s (job {:.2} s); relayed by the coordinator: {relayed} bytes",
        fetched as f64 / 1e6,
        fetch_secs,
        fetched as f64 / 1e6 / fetch_secs.max(1e-9),
        shuffle_job.as_secs_f64()
    );
    println!(
        "3. tiny job (sum of 1..=1000), submit to result, module cached: median {:.1} ms over {} runs (includes starting the `weft` client process)",
        latency.as_secs_f64() * 1e3,
        latencies.len()
    );
    Ok(())
}
