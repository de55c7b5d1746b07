//! Word count: `weft run word_count.wasm -- PATH [TOP]` prints the TOP (default 20) most frequent
//! words of the text file, directory or glob PATH (relative to the data directory).

use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    let Some(path) = args.first() else {
        eprintln!("usage: word_count PATH [TOP]");
        std::process::exit(2);
    };
    let top: usize = match args.get(1) {
        Some(n) => n.parse().unwrap_or_else(|_| {
            eprintln!("TOP must be a whole number, got {n:?}");
            std::process::exit(2)
        }),
        None => 20,
    };

    let counts = ctx
        .text_file(path)
        .flat_map(word_count::words)
        .map(|w: String| (w, 1u64))
        .reduce_by_key(word_count::add)
        .collect()?;

    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    println!("{total} words, {} distinct", counts.len());
    for (word, n) in word_count::rank(counts).into_iter().take(top) {
        println!("{n:>10}  {word}");
    }
    Ok(())
}
