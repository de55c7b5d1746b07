//! Engagement ratio, as in Mozilla's telemetry tutorial: for every operating system, country and
//! channel, the mean daily active clients over the 28-day window (DAU) divided by the clients
//! active in the window (MAU).
//!
//! - `weft run engagement.wasm -- generate DIR CLIENTS` writes the pings of CLIENTS generated
//!   clients into directory DIR (one part per partition).
//! - `weft run engagement.wasm -- PINGS` reads ping lines (a file, directory or glob) and
//!   prints `segment value dau mau ratio` per segment value, and the lines it skipped.
//!
//! Distinct clients are counted with HyperLogLog sketches (`weft::sketch`): one per segment
//! value and day, built within partitions and merged across them, then the days' sketches of a
//! segment value merged into its MAU. Nothing proportional to the number of clients leaves a
//! task.

use engagement::{DAYS, SEGMENTS, client_pings, parse};
use weft::prelude::*;
use weft::sketch::HyperLogLog;

/// Sketch precision: 16 KiB per sketch, a standard error of 0.81%.
const PRECISION: u8 = 14;

fn generate(ctx: &Context, dir: &str, clients: u64) -> weft::Result<()> {
    ctx.range(0, clients, 8).flat_map(client_pings).save_as_text_file(dir)?;
    println!("wrote the pings of {clients} clients to {dir}");
    Ok(())
}

fn analyze(ctx: &Context, path: &str) -> weft::Result<()> {
    let skipped = ctx.accumulator::<u64>("lines that are not pings");
    // ((segment, value, day), client) for every ping.
    let daily = ctx
        .text_file(path)
        .flat_map_with(skipped.clone(), |skipped, line: String| {
            let Some(ping) = parse(&line) else {
                skipped.add(1);
                return Vec::new();
            };
            (0..SEGMENTS.len())
                .map(|s| {
                    ((s as u8, ping.segments[s].to_string(), ping.day), ping.client.to_string())
                })
                .collect()
        })
        .aggregate_by_key(
            HyperLogLog::new(PRECISION),
            |mut sketch, client: String| {
                sketch.add(&client);
                sketch
            },
            |mut a, b| {
                a.merge(&b);
                a
            },
        );
    // Per segment value: the sum of the days' estimates, and the days' sketches merged.
    let mut rows = daily
        .map(|((segment, value, _day), sketch): ((u8, String, u32), HyperLogLog)| {
            ((segment, value), (sketch.estimate(), sketch))
        })
        .reduce_by_key(|(dau_a, mut a), (dau_b, b)| {
            a.merge(&b);
            (dau_a + dau_b, a)
        })
        .map(|((segment, value), (daily_sum, month)): ((u8, String), (u64, HyperLogLog))| {
            let dau = daily_sum as f64 / f64::from(DAYS);
            let mau = month.estimate();
            (segment, value, dau, mau)
        })
        .collect()?;
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    println!("{:<8} {:<12} {:>10} {:>10} {:>6}", "segment", "value", "dau", "mau", "ratio");
    for (segment, value, dau, mau) in rows {
        let ratio = if mau > 0 { dau / mau as f64 } else { 0.0 };
        let name = SEGMENTS[segment as usize];
        println!("{name:<8} {value:<12} {dau:>10.1} {mau:>10} {ratio:>6.3}");
    }
    println!("{} lines skipped", skipped.value());
    Ok(())
}

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["generate", dir, clients] => match clients.parse() {
            Ok(clients) => generate(&ctx, dir, clients),
            Err(_) => {
                eprintln!("CLIENTS must be a whole number, got {clients:?}");
                std::process::exit(2)
            }
        },
        [path] => analyze(&ctx, path),
        _ => {
            eprintln!("usage: engagement PINGS | engagement generate DIR CLIENTS");
            std::process::exit(2)
        }
    }
}
