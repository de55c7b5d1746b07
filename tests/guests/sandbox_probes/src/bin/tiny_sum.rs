//! The smallest useful job: the sum of 1..=1000 from `parallelize`, for latency measurements.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let sum = ctx.parallelize((1..=1000u64).collect(), 2).reduce(|a, b| a + b)?;
    println!("{}", sum.unwrap_or(0));
    Ok(())
}
