//! Shared by the benchmarks: the generated corpus, the native word count, timing helpers.

use rustc_hash::FxHashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `weft` binary and a guest module, from the target directory this binary was built in.
pub fn artifacts(module: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let target = weft_tests::target_dir();
    let weft = target.join("release/weft");
    let wasm = target.join(format!("wasm32-wasip1/release/{module}.wasm"));
    for p in [&weft, &wasm] {
        anyhow::ensure!(
            p.exists(),
            "{} is missing: run bench/run.sh, which builds it",
            p.display()
        );
    }
    Ok((weft, wasm))
}

/// Seeded text over a Zipf-like vocabulary of 50,000 words, with punctuation and capitals;
/// returns (lines, bytes).
pub fn generate(path: &Path, size: u64) -> anyhow::Result<(u64, u64)> {
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
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let words = 4 + (state >> 59) as usize;
        for i in 0..words {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // The cube of a uniform value: small indices (common words) are much more likely.
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
pub fn native_word_count(path: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut counts: FxHashMap<String, u64> = FxHashMap::default();
    for line in BufReader::with_capacity(1 << 20, std::fs::File::open(path)?).lines() {
        for w in word_count::words(line?) {
            let n = counts.entry(w).or_insert(0);
            *n = word_count::add(*n, 1);
        }
    }
    Ok(counts.into_iter().collect())
}

/// The text the word-count job prints for its `top` words, computed from native counts.
pub fn summary(counts: Vec<(String, u64)>, top: usize) -> String {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let distinct = counts.len();
    let mut s = format!("{total} words, {distinct} distinct\n");
    for (word, n) in word_count::rank(counts).into_iter().take(top) {
        s.push_str(&format!("{n:>10}  {word}\n"));
    }
    s
}

/// The median of some durations.
pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// A scratch directory, removed on drop unless the user chose it.
pub struct Scratch {
    /// Its path.
    pub path: PathBuf,
    keep: bool,
}

impl Scratch {
    /// `chosen`, or a fresh directory under the system's temporary directory.
    pub fn new(chosen: Option<PathBuf>, name: &str) -> anyhow::Result<Scratch> {
        let keep = chosen.is_some();
        let path = chosen.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("weft-bench-{name}-{}", std::process::id()))
        });
        std::fs::create_dir_all(&path)?;
        Ok(Scratch { path, keep })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
