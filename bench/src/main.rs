//! `weft-bench wordcount`: word count over generated text on the embedded engine (`weft run`,
//! a real process, module compilation included) against the same closures compiled natively in
//! a plain single-threaded loop, measured in the same run. Both answers are compared before any
//! figure is printed: a benchmark that computes something different is an error.

use anyhow::{Context as _, bail};
use clap::Parser;
use rustc_hash::FxHashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Word count: Weft (sandboxed, N workers) vs a native single-threaded loop")]
struct Args {
    /// Size of the generated text, in MB.
    #[arg(long, default_value_t = 200)]
    size_mb: u64,
    /// Workers for `weft run`.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Runs of each side; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where to write the generated text (default: a temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .context("target dir")?
        .to_path_buf();
    let weft = target.join("release/weft");
    let module = target.join("wasm32-wasip1/release/word_count.wasm");
    for p in [&weft, &module] {
        if !p.exists() {
            bail!(
                "{} is missing: run scripts/bench.sh, which builds it",
                p.display()
            );
        }
    }
    let tmp = tempfile_dir(&args)?;
    let corpus = tmp.join("corpus.txt");
    let started = Instant::now();
    let (lines, bytes) = generate(&corpus, args.size_mb << 20)?;
    eprintln!(
        "generated {:.0} MB, {lines} lines in {:.1?}",
        bytes as f64 / 1e6,
        started.elapsed()
    );

    let mut native_times = Vec::new();
    let mut native_answer = None;
    for run in 0..args.runs {
        let t = Instant::now();
        let counts = native_word_count(&corpus)?;
        native_times.push(t.elapsed());
        eprintln!("native run {run}: {:.2?}", t.elapsed());
        native_answer = Some(summary(counts));
    }
    let native_answer = native_answer.context("at least one run")?;

    let mut weft_times = Vec::new();
    for run in 0..args.runs {
        let t = Instant::now();
        let out = Command::new(&weft)
            .arg("run")
            .arg(&module)
            .args(["--workers", &args.workers.to_string(), "--data-dir"])
            .arg(&tmp)
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
        args.runs
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
    println!(
        "  ratio weft/native throughput: {:.2}x",
        rate(sandboxed) / rate(native)
    );
    if args.data_dir.is_none() {
        std::fs::remove_dir_all(&tmp)?;
    }
    Ok(())
}

fn tempfile_dir(args: &Args) -> anyhow::Result<PathBuf> {
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("weft-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Seeded text over a Zipf-like vocabulary of 50,000 words, with punctuation and capitals.
fn generate(path: &Path, size: u64) -> anyhow::Result<(u64, u64)> {
    let vocab: Vec<String> = (0..50_000u32)
        .map(|i| {
            let mut w = String::new();
            let mut x = i + 1;
            while x > 0 {
                w.push((b'a' + (x % 26) as u8) as char);
                x /= 26;
            }
            if i % 10 == 0 { w.to_uppercase() } else { w }
        })
        .collect();
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut state = 0x5eed_u64;
    let (mut written, mut lines) = (0u64, 0u64);
    let mut line = String::new();
    while written < size {
        line.clear();
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let words = 4 + (state >> 59) as usize;
        for i in 0..words {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Square of a uniform value: small indices (common words) much more likely.
            let u = (state >> 32) as f64 / u32::MAX as f64;
            let idx = ((u * u * u) * vocab.len() as f64) as usize % vocab.len();
            line.push_str(&vocab[idx]);
            line.push_str(if i % 7 == 6 { ", " } else { " " });
        }
        line.push_str(".\n");
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        lines += 1;
    }
    out.flush()?;
    Ok((lines, written))
}

/// The job's closures, run natively: read lines, split into words, count.
fn native_word_count(path: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut counts: FxHashMap<String, u64> = FxHashMap::default();
    for line in BufReader::with_capacity(1 << 20, std::fs::File::open(path)?).lines() {
        for w in word_count::words(line?) {
            let n = counts.entry(w).or_insert(0);
            *n = word_count::add(*n, 1);
        }
    }
    Ok(counts.into_iter().collect())
}

/// The text the job prints for its top 10, computed from native counts.
fn summary(counts: Vec<(String, u64)>) -> String {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let distinct = counts.len();
    let mut s = format!("{total} words, {distinct} distinct\n");
    for (word, n) in word_count::rank(counts).into_iter().take(10) {
        s.push_str(&format!("{n:>10}  {word}\n"));
    }
    s
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
