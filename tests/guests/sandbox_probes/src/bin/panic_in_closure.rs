//! A closure that panics on one record: the job must fail with the message and the operator.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let total = ctx
        .parallelize((1..=10u32).collect(), 3)
        .map(|x: u32| if x == 7 { panic!("record {x} is unlucky") } else { x })
        .reduce(|a, b| a + b)?;
    println!("unreachable: {total:?}");
    Ok(())
}
