//! Returns ARG MiB of results from one task to the driver (lines of 64 bytes), then prints how
//! many records came back and their total length.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let mib: u64 = ctx.args()[0].parse().expect("MiB");
    let records = (mib << 20) / 64;
    let lines = ctx
        .parallelize(vec![records], 1)
        .flat_map(|n: u64| (0..n).map(|i| format!("{i:0>62}")))
        .collect()?;
    let bytes: usize = lines.iter().map(String::len).sum();
    println!("records={} bytes={bytes}", lines.len());
    Ok(())
}
