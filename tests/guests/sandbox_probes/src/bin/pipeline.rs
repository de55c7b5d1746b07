//! Exercises every transformation and action once, printing results the test recomputes.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let numbers = ctx.parallelize((1..=1000u64).collect(), 5);
    let offset = 3u64;
    let shifted = numbers.map_with(offset, |o, x| x + *o);
    let evens = shifted.filter(|x| x % 2 == 0).filter_with(500u64, |limit, x| x <= limit);
    println!("evens count: {}", evens.count()?);
    println!("take 3: {:?}", evens.take(3)?);
    println!("first: {:?}", evens.first()?);
    let expanded = numbers
        .flat_map(|x: u64| vec![x; (x % 3) as usize])
        .flat_map_with(2u64, |k, x| vec![x * *k]);
    println!("expanded sum: {:?}", expanded.reduce(|a, b| a + b)?);
    let per_partition = numbers.map_partitions(|it| vec![it.count() as u64]).collect()?;
    println!("per partition: {per_partition:?}");
    let mut grouped = numbers
        .key_by(|x| x % 4)
        .map_values(|x: u64| x * 10)
        .group_by_key()
        .map(|(k, vs): (u64, Vec<u64>)| (k, vs.len(), vs.iter().sum::<u64>()))
        .collect()?;
    grouped.sort();
    println!("grouped: {grouped:?}");
    let mut reduced =
        numbers.map(|x: u64| (x % 7, x)).reduce_by_key_into(|a, b| a.max(b), 3).collect()?;
    reduced.sort();
    println!("max by mod 7: {reduced:?}");
    // One action's result feeds the next.
    let mean = numbers.reduce(|a, b| a + b)?.unwrap_or(0) / numbers.count()?;
    println!("above mean: {}", numbers.filter_with(mean, |m, x| x > m).count()?);
    let empty = numbers.filter(|_| false);
    println!(
        "empty: count={} first={:?} reduce={:?}",
        empty.count()?,
        empty.first()?,
        empty.reduce(|a, b| a + b)?
    );
    Ok(())
}
