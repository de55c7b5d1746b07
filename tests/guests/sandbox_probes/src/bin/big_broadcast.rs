//! A broadcast of ARG megabytes read by every task of a job of 60 partitions: each task adds up
//! the table's bytes at its records' positions. Prints `sum S` and `tasks T`.
use weft::prelude::*;

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let megabytes: usize = ctx.args()[0].parse().expect("megabytes");
    // A table of pseudo-random bytes, the same every time.
    let mut state = 7u64;
    let table: Vec<u8> = (0..megabytes << 20)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    let table = ctx.broadcast(serde_bytes_vec(table));
    let sum = ctx
        .range(0, 60_000, 60)
        .map_with(table, |table, i: u64| {
            let bytes = &table.value().0;
            u64::from(bytes[(i.wrapping_mul(2_654_435_761) % bytes.len() as u64) as usize])
        })
        .sum()?;
    println!("sum {sum}");
    Ok(())
}

/// Bytes that serialise as one MessagePack binary (not an array of numbers).
#[derive(serde::Serialize, serde::Deserialize)]
struct Table(#[serde(with = "serde_bytes")] Vec<u8>);

fn serde_bytes_vec(bytes: Vec<u8>) -> Table {
    Table(bytes)
}
