//! A closure that prints a lot: the output is captured with a cap, and the job still succeeds.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let n = ctx
        .parallelize(vec![1u32], 1)
        .map(|x: u32| {
            println!("hello from a task");
            for i in 0..100_000 {
                eprintln!("chatter line {i} {}", "-".repeat(40));
            }
            x
        })
        .count()?;
    println!("count: {n}");
    Ok(())
}
