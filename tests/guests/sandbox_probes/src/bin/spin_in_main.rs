//! A driver that never returns: must be stopped by the driver's CPU budget, after a first action
//! (whose waiting time must not count against that budget) succeeded.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let n = ctx.parallelize((0..100u64).collect(), 4).count()?;
    println!("counted {n}");
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}
