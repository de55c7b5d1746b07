//! `weft-bench wordcount`: word count over generated text on the embedded engine (`weft run`, a
//! real process, module compilation included) against the same closures compiled natively in a
//! plain single-threaded loop, measured in the same run. Both answers are compared before any
//! figure is printed: a benchmark that computes something different is an error.

use crate::corpus::{Scratch, artifacts, generate, median, native_word_count, summary};
use anyhow::bail;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `wordcount`.
#[derive(clap::Args)]
pub struct Args {
    /// Size of the generated text, in MB.
    #[arg(long, default_value_t = 200)]
    size_mb: u64,
    /// Workers for `weft run`.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Runs of each side; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where to write the generated text (default: a temporary directory, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (weft, module) = artifacts("word_count")?;
    let dir = Scratch::new(args.data_dir.clone(), "wordcount")?;
    let corpus = dir.path.join("corpus.txt");
    let started = Instant::now();
    let (lines, bytes) = generate(&corpus, args.size_mb << 20)?;
    eprintln!("generated {:.0} MB, {lines} lines in {:.1?}", bytes as f64 / 1e6, started.elapsed());

    let mut native_times = Vec::new();
    let mut native_answer = String::new();
    for run in 0..args.runs.max(1) {
        let t = Instant::now();
        let counts = native_word_count(&corpus)?;
        native_times.push(t.elapsed());
        eprintln!("native run {run}: {:.2?}", t.elapsed());
        native_answer = summary(counts, 10);
    }

    let mut weft_times = Vec::new();
    for run in 0..args.runs.max(1) {
        let t = Instant::now();
        let out = Command::new(&weft)
            .arg("run")
            .arg(&module)
            .args(["--workers", &args.workers.to_string(), "--data-dir"])
            .arg(&dir.path)
            .args(["--", "corpus.txt", "10"])
            .output()?;
        let elapsed = t.elapsed();
        if !out.status.success() {
            bail!("weft run failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let stdout = String::from_utf8(out.stdout)?;
        if stdout != native_answer {
            bail!("weft and native disagree\n--- weft\n{stdout}\n--- native\n{native_answer}");
        }
        weft_times.push(elapsed);
        eprintln!("weft run {run}: {elapsed:.2?}");
    }

    let native = median(&mut native_times);
    let sandboxed = median(&mut weft_times);
    let rate = |d: Duration| lines as f64 / d.as_secs_f64();
    println!(
        "word count over {:.0} MB ({lines} lines), median of {} runs, answers identical",
        bytes as f64 / 1e6,
        args.runs.max(1)
    );
    println!(
        "  native, 1 thread          {:>8.2} s  {:>12.0} records/s",
        native.as_secs_f64(),
        rate(native)
    );
    println!(
        "  weft run, {} workers       {:>8.2} s  {:>12.0} records/s",
        args.workers,
        sandboxed.as_secs_f64(),
        rate(sandboxed)
    );
    println!("  ratio weft/native throughput: {:.2}x", rate(sandboxed) / rate(native));
    Ok(())
}
