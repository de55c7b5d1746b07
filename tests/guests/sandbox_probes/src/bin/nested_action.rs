//! A closure that tries to run an action: only the driver may, so the task fails cleanly.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let n = ctx
        .parallelize(vec![1u32, 2], 1)
        .map(|x: u32| {
            let inner = Context::new();
            let count = inner.parallelize(vec![x], 1).count().unwrap_or(0);
            x + count as u32
        })
        .count()?;
    println!("unreachable: {n}");
    Ok(())
}
