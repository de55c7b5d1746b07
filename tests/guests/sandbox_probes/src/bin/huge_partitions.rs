//! Asks for more partitions than any host will allocate: `shuffle` asks a shuffle for
//! `u32::MAX` buckets, `inline` spreads records over 100 000 inline partitions. Either action
//! must fail with a clear error, and the job prints it.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let what = ctx.args().first().cloned().unwrap_or_default();
    let result = match what.as_str() {
        "shuffle" => ctx
            .parallelize(vec![(1u32, 1u64), (2, 2)], 2)
            .reduce_by_key_into(|a, b| a + b, u32::MAX)
            .count(),
        "inline" => ctx.parallelize(vec![1u8; 100_000], 100_000).count(),
        other => panic!("unknown case {other:?}"),
    };
    match result {
        Ok(n) => println!("counted {n}"),
        Err(e) => {
            println!("refused: {e}");
            std::process::exit(3);
        }
    }
    Ok(())
}
