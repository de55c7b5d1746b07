//! A closure that allocates without end: must be stopped by the memory limit.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let n = ctx
        .parallelize(vec![1u32], 1)
        .map(|x: u32| {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![x as u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        })
        .count()?;
    println!("unreachable: {n:?}");
    Ok(())
}
