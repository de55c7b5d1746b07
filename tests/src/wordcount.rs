//! Word-count test data and the native computation the engine's answers are checked against.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Deterministic pseudo-random text: `lines` lines over a skewed vocabulary, with punctuation
/// and mixed case so tokenisation matters.
pub fn generated_text(seed: u64, lines: usize) -> String {
    let vocab = [
        "the",
        "Weft",
        "data",
        "sandbox",
        "shuffle",
        "don't",
        "spark",
        "river",
        "Ünïcode",
        "a",
        "of",
        "quick",
    ];
    let mut state = seed;
    let mut out = String::new();
    for _ in 0..lines {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let words = 1 + (state >> 60) as usize;
        for w in 0..words {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = (state >> 33) as usize;
            let word = vocab[(r % vocab.len()).min(r % 5 + r % 7)];
            out.push_str(word);
            out.push_str(if w % 4 == 3 { ", " } else { " " });
        }
        out.push_str(if state.is_multiple_of(3) { "!\r\n" } else { "\n" });
    }
    out
}

/// The counts computed natively with the job's own tokeniser.
pub fn native_counts(texts: &[String]) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for text in texts {
        for line in text.lines() {
            for w in word_count::words(line.to_string()) {
                *counts.entry(w).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Parse the job's output: the total and the per-word counts.
pub fn parse_counts(stdout: &str) -> (u64, HashMap<String, u64>) {
    let mut lines = stdout.lines();
    let total: u64 =
        lines.next().expect("summary line").split_whitespace().next().unwrap().parse().unwrap();
    let counts = lines
        .map(|l| {
            let mut parts = l.split_whitespace();
            let n: u64 = parts.next().unwrap().parse().unwrap();
            (parts.next().unwrap().to_string(), n)
        })
        .collect();
    (total, counts)
}

/// Fill `books` with a big plain file (several 1 MiB splits), a small one, a gzip file, and files
/// that must be ignored (hidden, `_`-prefixed, as Spark does); returns the texts that count.
pub fn write_books(books: &Path) -> Vec<String> {
    std::fs::create_dir_all(books).unwrap();
    let big = generated_text(1, 120_000);
    assert!(big.len() > 3 << 20);
    std::fs::write(books.join("big.txt"), &big).unwrap();
    let small = generated_text(2, 500);
    std::fs::write(books.join("small.txt"), &small).unwrap();
    let zipped = generated_text(3, 20_000);
    let file = std::fs::File::create(books.join("more.txt.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    gz.write_all(zipped.as_bytes()).unwrap();
    gz.finish().unwrap();
    std::fs::write(books.join(".hidden"), "ignored words").unwrap();
    std::fs::write(books.join("_SUCCESS"), "ignored words").unwrap();
    vec![big, small, zipped]
}
