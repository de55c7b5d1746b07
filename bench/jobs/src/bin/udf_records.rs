//! `weft run udf_records.wasm [--udf NAME=mix_udf.wasm] -- SOURCE MODE [NAME]`: every record's
//! `key ^ value` passed through `mix`, then the count and a wrapping sum of the results.
//!
//! `SOURCE` is a `key,value` CSV file, or `range:N` for the numbers below N generated in the
//! tasks (nothing read, so that the call is all there is). `MODE` is `inline` (the function
//! compiled into this job, `map`) or `udf` (called by name from the UDF module `NAME`,
//! `map_udf`). Prints `records N checksum S`.

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
    let (source, mode, name) = match &args[..] {
        [s, m] => (s.as_str(), m.as_str(), "bench/mix"),
        [s, m, n] => (s.as_str(), m.as_str(), n.as_str()),
        _ => {
            eprintln!("usage: udf_records SOURCE MODE [UDF_MODULE]");
            std::process::exit(2);
        }
    };
    let numbers = match source.strip_prefix("range:") {
        Some(n) => {
            let n: u64 = n.parse().map_err(|_| weft::Error::Input(format!("bad count {n}")))?;
            ctx.range(0, n, 16)
        }
        None => ctx.csv::<Row>(source).map(|r: Row| r.key ^ r.value),
    };
    let mixed = match mode {
        "inline" => numbers.map(bench_jobs::mix),
        "udf" => numbers.map_udf(&ctx.udf::<u64, u64>(name, "mix")?),
        other => {
            eprintln!("unknown mode {other}: inline or udf");
            std::process::exit(2);
        }
    };
    let (count, sum) = mixed
        .map(|x: u64| (1u64, x))
        .reduce(|a: (u64, u64), b: (u64, u64)| (a.0 + b.0, a.1.wrapping_add(b.1)))?
        .unwrap_or((0, 0));
    println!("records {count} checksum {sum}");
    Ok(())
}
