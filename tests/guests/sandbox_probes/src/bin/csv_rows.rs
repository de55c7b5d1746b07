//! Reads `name,score` rows from the CSV given as argument, strictly, or skipping bad rows with
//! `skip`; prints the sum of scores and the row count.
use serde::{Deserialize, Serialize};
use weft::prelude::*;

#[derive(Serialize, Deserialize)]
struct Row {
    name: String,
    score: u32,
}

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    let mut options = CsvOptions::new();
    if args.get(1).is_some_and(|a| a == "skip") {
        options = options.skip_bad_rows();
    }
    let scores = ctx.csv_with::<Row>(&args[0], options).map(|r: Row| r.score as u64);
    let rows = scores.count()?;
    let sum = scores.reduce(|a, b| a + b)?.unwrap_or(0);
    println!("rows={rows} sum={sum}");
    Ok(())
}
