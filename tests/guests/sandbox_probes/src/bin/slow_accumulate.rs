//! `slow_shuffle` with accumulators, so that a node can be killed while it runs and the counts
//! checked: 12 partitions of 1..=12000 whose map tasks each take ARG milliseconds count their
//! records in an accumulator (a transformation, recomputed for the outputs the node held), then
//! a `for_each_with` adds every key's sum into another (an action). Prints `records N`,
//! `sum S` and `ticks T` (an `f64` accumulator of 0.5 per record).
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let millis: u64 = ctx.args()[0].parse().expect("milliseconds");
    let records = ctx.accumulator::<u64>("records");
    let sum = ctx.accumulator::<i64>("sum");
    let ticks = ctx.accumulator::<f64>("ticks");
    let sums = ctx
        .parallelize((1..=12_000u64).collect(), 12)
        .map_with((millis, records.clone(), ticks.clone()), |(ms, records, ticks), x: u64| {
            records.add(1);
            ticks.add(0.5);
            if x % 1000 == 1 {
                let start = std::time::Instant::now();
                while start.elapsed().as_millis() < *ms as u128 {
                    std::hint::black_box(x);
                }
            }
            (x % 10, x)
        })
        .reduce_by_key(|a, b| a + b);
    sums.for_each_with(sum.clone(), |sum, (_, s): (u64, u64)| sum.add(s as i64))?;
    println!("records {}", records.value());
    println!("sum {}", sum.value());
    println!("ticks {}", ticks.value());
    Ok(())
}
