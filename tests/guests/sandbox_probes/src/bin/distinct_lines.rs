//! Counts the distinct lines of a text input: every line crosses the shuffle as a key, so the
//! shuffle carries about as many bytes as the input (a shuffle-throughput workload).
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    let distinct =
        ctx.text_file(&args[0]).map(|l: String| (l, 1u32)).reduce_by_key(|a, b| a + b).count()?;
    println!("{distinct} distinct lines");
    Ok(())
}
