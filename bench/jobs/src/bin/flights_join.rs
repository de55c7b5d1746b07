//! `weft run flights_join.wasm -- FLIGHTS_CSV AIRLINES_CSV`: every flight joined with its airline
//! by carrier code (a record-level `join`: both sides are shuffled by key), then, per airline,
//! the number of flights, how many departed (have a departure delay) and the average delay,
//! most delayed first. A flight whose carrier is not in the airlines file is left out, as an
//! inner join does.

use serde::{Deserialize, Serialize};
use weft::prelude::*;

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

/// Flights, flights with a delay value, sum of delays.
type Totals = (u64, u64, f64);

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    let [flights_path, airlines_path] = &args[..] else {
        eprintln!("usage: flights_join FLIGHTS_CSV AIRLINES_CSV");
        std::process::exit(2);
    };
    let options = CsvOptions::new().null_value("NA");
    let flights = ctx
        .csv_with::<Flight>(flights_path, options.clone())
        .map(|f: Flight| (f.carrier, f.dep_delay));
    let airlines =
        ctx.csv_with::<Airline>(airlines_path, options).map(|a: Airline| (a.carrier, a.name));
    let per_airline = flights
        .join(&airlines)
        .map(|(carrier, (delay, name)): (String, (Option<f64>, String))| {
            ((carrier, name), (1u64, u64::from(delay.is_some()), delay.unwrap_or(0.0)))
        })
        .reduce_by_key(|a: Totals, b: Totals| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
        .collect()?;

    let mut rows: Vec<(String, String, u64, u64, f64)> = per_airline
        .into_iter()
        .map(|((carrier, name), (n, departed, sum))| {
            let avg = if departed > 0 { sum / departed as f64 } else { f64::NAN };
            (carrier, name, n, departed, avg)
        })
        .collect();
    rows.sort_by(|a, b| b.4.total_cmp(&a.4).then_with(|| a.0.cmp(&b.0)));
    println!("carrier flights departed avg_delay name");
    for (carrier, name, n, departed, avg) in rows {
        println!("{carrier} {n} {departed} {avg:.2} {name}");
    }
    Ok(())
}
