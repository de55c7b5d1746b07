//! `weft-bench udf`: what calling a function through a UDF module costs, against the same
//! function compiled into the job, in the same run.
//!
//! The job (`udf_records`) passes every record's `key ^ value` through `mix` (SplitMix64's
//! finaliser, a few nanoseconds) and sums the results. Inlined, `mix` is a `map` fused with the
//! rest of the stage; as a UDF it is `map_udf` into the module `mix_udf`, pushed once and called
//! by name, batch by batch, in a sandbox of its own. Two sources:
//!
//! - the `key,value` CSV of the sort workload (20 M records by default): a job that reads its
//!   data, as jobs do;
//! - `range:N`, numbers generated in the tasks: nothing else to do per record, so the ratio is
//!   the cost of the call itself (the worst case).
//!
//! Both modes' answers are checked against the same sum computed natively before any time is
//! printed. The two modes run in pairs, back to back in alternating order; the report gives the
//! medians and the median of the pairs' ratios.

use crate::corpus::{Scratch, artifacts, median};
use anyhow::{Context as _, bail};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `udf`.
#[derive(clap::Args)]
pub struct Args {
    /// Records of each source.
    #[arg(long, default_value_t = 20_000_000)]
    records: u64,
    /// Workers for `weft run`.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Runs of each mode; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where to write the generated records (default: a temporary directory, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// The answer the job must print for `records` inputs `x`.
fn answer(inputs: impl Iterator<Item = u64>) -> String {
    let (mut count, mut sum) = (0u64, 0u64);
    for x in inputs {
        count += 1;
        sum = sum.wrapping_add(bench_jobs::mix(x));
    }
    format!("records {count} checksum {sum}\n")
}

/// The native answer for the CSV at `path`.
fn csv_answer(path: &Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut xs = Vec::new();
    for line in reader.lines().skip(1) {
        let line = line?;
        let (k, v) = line.split_once(',').context("a record without a comma")?;
        xs.push(k.parse::<u64>()? ^ v.parse::<u64>()?);
    }
    Ok(answer(xs.into_iter()))
}

struct Side {
    label: &'static str,
    source: String,
    expected: String,
    inline: Vec<Duration>,
    udf: Vec<Duration>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (weft, job) = artifacts("udf_records")?;
    let (_, udf_module) = artifacts("mix_udf")?;
    let dir = Scratch::new(args.data_dir.clone(), "udf")?;
    let csv = dir.path.join("records.csv");
    let started = Instant::now();
    let bytes = crate::records::generate(&csv, args.records)?;
    eprintln!(
        "generated {} records ({:.0} MB) in {:.1?}",
        args.records,
        bytes as f64 / 1e6,
        started.elapsed()
    );
    let mut sides = vec![
        Side {
            label: "CSV records",
            source: "records.csv".into(),
            expected: csv_answer(&csv)?,
            inline: Vec::new(),
            udf: Vec::new(),
        },
        Side {
            label: "generated numbers",
            source: format!("range:{}", args.records),
            expected: answer(0..args.records),
            inline: Vec::new(),
            udf: Vec::new(),
        },
    ];
    let udf_option = format!("bench/mix={}", udf_module.display());
    let run_once = |source: &str, mode: &str, expected: &str| -> anyhow::Result<Duration> {
        let t = Instant::now();
        let out = Command::new(&weft)
            .arg("run")
            .arg(&job)
            .args(["--workers", &args.workers.to_string(), "--udf", &udf_option, "--data-dir"])
            .arg(&dir.path)
            .args(["--", source, mode])
            .output()?;
        let elapsed = t.elapsed();
        if !out.status.success() {
            bail!("weft run ({mode}) failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let stdout = String::from_utf8(out.stdout)?;
        if stdout != expected {
            bail!("{mode} over {source} answered {stdout:?}, native {expected:?}");
        }
        Ok(elapsed)
    };
    // A first run of each mode fills the compiled-module cache; it is not counted.
    for side in &sides {
        run_once(&side.source, "inline", &side.expected)?;
        run_once(&side.source, "udf", &side.expected)?;
    }
    for run in 0..args.runs.max(1) {
        for side in &mut sides {
            // Each pair runs back to back, in alternating order, so that a machine that slows
            // down or speeds up weighs on both sides alike.
            let (inline, udf) = if run % 2 == 0 {
                let inline = run_once(&side.source, "inline", &side.expected)?;
                (inline, run_once(&side.source, "udf", &side.expected)?)
            } else {
                let udf = run_once(&side.source, "udf", &side.expected)?;
                (run_once(&side.source, "inline", &side.expected)?, udf)
            };
            eprintln!("run {run}, {}: inline {inline:.2?}, map_udf {udf:.2?}", side.label);
            side.inline.push(inline);
            side.udf.push(udf);
        }
    }
    println!(
        "map_udf vs the same function inlined, {} records, weft run with {} workers, median of {} \
         runs, answers checked against native",
        args.records,
        args.workers,
        args.runs.max(1)
    );
    println!(
        "| source | inlined (`map`) | UDF (`map_udf`) | ratio of medians | median ratio of pairs |"
    );
    println!("|---|---:|---:|---:|---:|");
    for side in &mut sides {
        let mut pairs: Vec<f64> = side
            .udf
            .iter()
            .zip(&side.inline)
            .map(|(u, i)| u.as_secs_f64() / i.as_secs_f64())
            .collect();
        pairs.sort_by(f64::total_cmp);
        let paired = pairs[pairs.len() / 2];
        let inline = median(&mut side.inline).as_secs_f64();
        let udf = median(&mut side.udf).as_secs_f64();
        println!(
            "| {} | {inline:.2} s | {udf:.2} s | {:.2}x | {paired:.2}x |",
            side.label,
            udf / inline
        );
    }
    Ok(())
}
