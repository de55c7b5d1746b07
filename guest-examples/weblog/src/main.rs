//! Web-server log analysis: `weft run weblog.wasm -- PATH [TOP [FRACTION]]` reads Apache
//! common-log lines from the file, directory or glob PATH and prints the line counts (malformed
//! lines are skipped and counted with an accumulator), requests and bytes of the TOP (default
//! 10) busiest hosts, the day with the most bytes served and the resource requested by the most
//! distinct hosts. With FRACTION (between 0 and 1) it also looks at a random sample of that
//! share of the lines (the same for the same input, seed 7), cached for the two actions that
//! read it: its size and its distinct hosts.

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use weblog::{HostTotals, add_totals, largest, parse, top_hosts};
use weft::prelude::*;

/// What a record counts, as the key of the job's one aggregation.
#[derive(Serialize, Deserialize, PartialEq, Eq, Hash)]
enum Stat {
    /// Requests and bytes of a host.
    Host(String),
    /// Bytes served on a day.
    Day(String),
    /// The distinct hosts that requested a resource.
    Resource(String),
}

/// What one line adds to a [`Stat`].
#[derive(Serialize, Deserialize)]
enum Seen {
    /// Requests and bytes.
    Totals(HostTotals),
    /// A host that requested the resource.
    Visitor(String),
}

/// The running value of a [`Stat`]: totals, or (for a resource) the set of its hosts.
#[derive(Serialize, Deserialize, Clone, Default)]
struct Tally {
    totals: HostTotals,
    hosts: FxHashSet<String>,
}

/// Add what a line saw to a tally.
fn add(mut tally: Tally, seen: Seen) -> Tally {
    match seen {
        Seen::Totals(totals) => tally.totals = add_totals(tally.totals, totals),
        Seen::Visitor(host) => {
            tally.hosts.insert(host);
        }
    }
    tally
}

/// Merge the tallies of one statistic from two partitions.
fn merge(mut a: Tally, mut b: Tally) -> Tally {
    a.totals = add_totals(a.totals, b.totals);
    if a.hosts.len() < b.hosts.len() {
        std::mem::swap(&mut a.hosts, &mut b.hosts);
    }
    a.hosts.extend(b.hosts);
    a
}

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    let args = ctx.args();
    let Some(path) = args.first() else {
        eprintln!("usage: weblog PATH [TOP]");
        std::process::exit(2);
    };
    let top: usize = match args.get(1) {
        Some(n) => n.parse().unwrap_or_else(|_| {
            eprintln!("TOP must be a whole number, got {n:?}");
            std::process::exit(2)
        }),
        None => 10,
    };
    let fraction: Option<f64> = args.get(2).map(|f| {
        f.parse().ok().filter(|f| (0.0..=1.0).contains(f)).unwrap_or_else(|| {
            eprintln!("FRACTION must be a number between 0 and 1, got {f:?}");
            std::process::exit(2)
        })
    });
    let malformed = ctx.accumulator::<u64>("malformed lines");

    // One scan of the input answers all three questions (Weft has no cache yet, and reading the
    // logs once is cheaper anyway): every line becomes tagged records, aggregated by key. A
    // resource's hosts are folded into a set (Spark's `aggregateByKey` idiom for distinct values
    // per key), so a host is sent once per resource and partition, and only the set sizes come
    // back to the driver.
    let stats = ctx
        .text_file(path)
        .flat_map_with(malformed.clone(), |malformed, line: String| match parse(&line) {
            Some(r) => vec![
                (Stat::Host(r.host.to_string()), Seen::Totals((1, r.bytes))),
                (Stat::Day(r.day.to_string()), Seen::Totals((0, r.bytes))),
                (Stat::Resource(r.path.to_string()), Seen::Visitor(r.host.to_string())),
            ],
            None => {
                malformed.add(1);
                Vec::new()
            }
        })
        .aggregate_by_key(Tally::default(), add, merge)
        .map(|(stat, tally): (Stat, Tally)| match stat {
            Stat::Resource(_) => (stat, (tally.hosts.len() as u64, 0)),
            _ => (stat, tally.totals),
        })
        .collect()?;

    let malformed = malformed.value();
    let mut lines = malformed;
    let (mut hosts, mut days, mut resources) = (Vec::new(), Vec::new(), Vec::new());
    for (stat, totals) in stats {
        match stat {
            Stat::Host(host) => {
                lines += totals.0;
                hosts.push((host, totals));
            }
            Stat::Day(day) => days.push((day, totals.1)),
            Stat::Resource(path) => resources.push((path, totals.0)),
        }
    }
    let bytes: u64 = hosts.iter().map(|(_, t)| t.1).sum();
    println!("{lines} lines, {} parsed, {malformed} malformed", lines - malformed);
    println!("{} hosts, {bytes} bytes", hosts.len());
    println!("top {top} hosts by requests:");
    for (host, (requests, bytes)) in top_hosts(hosts, top) {
        println!("{requests:>10} {bytes:>14}  {host}");
    }
    if let Some((day, bytes)) = largest(days) {
        println!("busiest day: {day} {bytes} bytes");
    }
    if let Some((path, hosts)) = largest(resources) {
        println!("most widely requested resource: {path} {hosts} hosts");
    }
    if let Some(fraction) = fraction {
        // Two actions read the sample: cached, it is read and drawn once.
        let sampled = ctx.text_file(path).sample(false, fraction, 7).cache();
        let hosts = sampled.flat_map(|line: String| parse(&line).map(|r| r.host.to_string()));
        let (lines, distinct) = (sampled.count()?, hosts.distinct().count()?);
        println!("sample of {fraction}: {lines} lines, {distinct} distinct hosts");
    }
    Ok(())
}
