//! Web-server log analysis: `weft run weblog.wasm -- PATH [TOP]` reads Apache common-log lines
//! from the file, directory or glob PATH and prints the line counts (malformed lines are counted
//! and skipped), requests and bytes of the TOP (default 10) busiest hosts, the day with the most
//! bytes served and the resource requested by the most distinct hosts.

use serde::{Deserialize, Serialize};
use weblog::{HostTotals, add_totals, largest, parse, top_hosts};
use weft::prelude::*;

/// What a record counts, as the key of the job's one reduction. Values are (requests, bytes).
#[derive(Serialize, Deserialize, PartialEq, Eq, Hash)]
enum Stat {
    /// Requests and bytes of a host.
    Host(String),
    /// Bytes served on a day.
    Day(String),
    /// A (resource, host) pair seen: reduced to one record per distinct pair.
    Visit(String, String),
    /// Distinct hosts that requested a resource.
    Resource(String),
    /// Lines that are not in common log format.
    Malformed,
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

    // One scan of the input answers all three questions (Weft has no cache yet, and reading the
    // logs once is cheaper anyway): every line becomes tagged records, reduced by key; then the
    // distinct (resource, host) pairs are counted per resource in a second shuffle.
    let stats = ctx
        .text_file(path)
        .flat_map(|line: String| match parse(&line) {
            Some(r) => vec![
                (Stat::Host(r.host.to_string()), (1, r.bytes)),
                (Stat::Day(r.day.to_string()), (0, r.bytes)),
                (Stat::Visit(r.path.to_string(), r.host.to_string()), (0, 0)),
            ],
            None => vec![(Stat::Malformed, (1, 0))],
        })
        .reduce_by_key(add_totals)
        .map(|(stat, totals): (Stat, HostTotals)| match stat {
            // One record per distinct pair now: count it for its resource.
            Stat::Visit(path, _host) => (Stat::Resource(path), (1, 0)),
            other => (other, totals),
        })
        .reduce_by_key(add_totals)
        .collect()?;

    let (mut lines, mut malformed) = (0, 0);
    let (mut hosts, mut days, mut resources) = (Vec::new(), Vec::new(), Vec::new());
    for (stat, totals) in stats {
        match stat {
            Stat::Host(host) => {
                lines += totals.0;
                hosts.push((host, totals));
            }
            Stat::Day(day) => days.push((day, totals.1)),
            Stat::Resource(path) => resources.push((path, totals.0)),
            Stat::Malformed => {
                lines += totals.0;
                malformed = totals.0;
            }
            Stat::Visit(..) => unreachable!("visits are counted per resource above"),
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
    Ok(())
}
