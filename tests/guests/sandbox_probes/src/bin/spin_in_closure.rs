//! A closure that never returns: must be stopped by the task deadline.
use weft::prelude::*;

#[allow(clippy::empty_loop)]
fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let n = ctx
        .parallelize(vec![1u32, 2, 3], 2)
        .map(|x: u32| -> u32 {
            loop {
                std::hint::black_box(x);
            }
        })
        .count()?;
    println!("unreachable: {n}");
    Ok(())
}
