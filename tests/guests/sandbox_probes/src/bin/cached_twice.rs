//! A cached dataset read by two actions, with ARG milliseconds between them (so that a node
//! can be killed there): 12 partitions of 0..12000 counted in an accumulator as they are
//! computed, then cached. Prints `first N` after the first action, `second SUM` and
//! `computed C` (how many records were computed in all) after the second.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let millis: u64 = ctx.args()[0].parse().expect("milliseconds");
    let computed = ctx.accumulator::<u64>("computed");
    let numbers = ctx
        .parallelize((0..12_000u64).collect(), 12)
        .map_with(computed.clone(), |computed, x: u64| {
            computed.add(1);
            x
        })
        .cache();
    println!("first {}", numbers.count()?);
    let start = std::time::Instant::now();
    while start.elapsed().as_millis() < u128::from(millis) {
        std::hint::black_box(&numbers);
    }
    println!("second {}", numbers.sum()?);
    println!("computed {}", computed.value());
    Ok(())
}
