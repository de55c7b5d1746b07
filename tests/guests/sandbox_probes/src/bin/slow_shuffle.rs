//! A shuffle job whose map tasks each take ARG milliseconds, so that a node can be killed while
//! it runs: 12 partitions of 1..=12000, keyed by `x % 10`, summed per key; prints `key sum` lines.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let millis: u64 = ctx.args()[0].parse().expect("milliseconds");
    let mut sums = ctx
        .parallelize((1..=12_000u64).collect(), 12)
        .map_with(millis, |ms, x: u64| {
            // Spend `ms` in the first record of every 1000 (one per partition).
            if x % 1000 == 1 {
                let start = std::time::Instant::now();
                while start.elapsed().as_millis() < *ms as u128 {
                    std::hint::black_box(x);
                }
            }
            (x % 10, x)
        })
        .reduce_by_key(|a, b| a + b)
        .collect()?;
    sums.sort();
    for (k, s) in sums {
        println!("{k} {s}");
    }
    Ok(())
}
