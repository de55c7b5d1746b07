//! An action whose tasks each compute for ARG milliseconds: with one worker the action takes far
//! longer than the driver's budget, which must not count the wait.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let millis: u64 = ctx.args()[0].parse().expect("milliseconds");
    let spins = ctx
        .parallelize(vec![millis; 6], 6)
        .map(|ms: u64| {
            let start = std::time::Instant::now();
            let mut spins = 0u64;
            while start.elapsed().as_millis() < ms as u128 {
                spins = std::hint::black_box(spins + 1);
            }
            spins.min(1)
        })
        .reduce(|a, b| a + b)?;
    println!("tasks done: {}", spins.unwrap_or(0));
    Ok(())
}
