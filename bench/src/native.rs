//! The native baseline: each workload's logic in a plain single-threaded Rust loop, no framework.
//! Where the Weft job's logic lives in a library (`word_count`, `weblog`), the very same functions
//! run here. Each prints its answer in the layout of the Weft job, so answers can be compared.
//!
//! It runs as a child process (`weft-bench native WORKLOAD PATH`), like every other engine, so
//! that its time and memory are measured the same way.

use anyhow::{Context as _, bail};
use rustc_hash::{FxHashMap, FxHashSet};
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Options of the hidden `native` subcommand.
#[derive(clap::Args)]
pub struct Args {
    /// `wordcount`, `weblog`, `flights`, `join` or `sort`.
    workload: String,
    /// The input file.
    path: PathBuf,
    /// The join's airlines file; the sort's output directory.
    extra: Option<PathBuf>,
    /// How many top entries to print (word count: words, web log: hosts).
    #[arg(long, default_value_t = 10)]
    top: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let answer = match args.workload.as_str() {
        "wordcount" => word_count(&args.path, args.top)?,
        "weblog" => weblog(&args.path, args.top)?,
        "flights" => flights(&args.path)?,
        "join" => join(&args.path, args.extra.as_deref().context("join needs an airlines file")?)?,
        "sort" => sort(&args.path, args.extra.as_deref().context("sort needs an output dir")?)?,
        other => bail!("unknown workload {other:?}"),
    };
    print!("{answer}");
    Ok(())
}

fn open(path: &Path) -> anyhow::Result<std::io::BufReader<std::fs::File>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(std::io::BufReader::with_capacity(1 << 20, file))
}

/// Word count, printed like the `word_count` job.
pub fn word_count(path: &Path, top: usize) -> anyhow::Result<String> {
    let counts = crate::corpus::native_word_count(path)?;
    Ok(crate::corpus::summary(counts, top))
}

/// The web-log analysis, printed like the `weblog` job.
pub fn weblog(path: &Path, top: usize) -> anyhow::Result<String> {
    let mut per_host: FxHashMap<String, (u64, u64)> = FxHashMap::default();
    let mut per_day: FxHashMap<String, u64> = FxHashMap::default();
    let mut hosts_of: FxHashMap<String, FxHashSet<String>> = FxHashMap::default();
    let (mut lines, mut malformed) = (0u64, 0u64);
    let mut reader = open(path)?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        lines += 1;
        let text = line.strip_suffix('\n').unwrap_or(&line);
        let Some(r) = weblog::parse(text.strip_suffix('\r').unwrap_or(text)) else {
            malformed += 1;
            continue;
        };
        let totals = per_host.entry(r.host.to_string()).or_default();
        *totals = weblog::add_totals(*totals, (1, r.bytes));
        *per_day.entry(r.day.to_string()).or_default() += r.bytes;
        let hosts = hosts_of.entry(r.path.to_string()).or_default();
        if !hosts.contains(r.host) {
            hosts.insert(r.host.to_string());
        }
    }
    let bytes: u64 = per_host.values().map(|t| t.1).sum();
    let mut out = String::new();
    writeln!(out, "{lines} lines, {} parsed, {malformed} malformed", lines - malformed)?;
    writeln!(out, "{} hosts, {bytes} bytes", per_host.len())?;
    writeln!(out, "top {top} hosts by requests:")?;
    for (host, (requests, bytes)) in weblog::top_hosts(per_host.into_iter().collect(), top) {
        writeln!(out, "{requests} {bytes} {host}")?;
    }
    if let Some((day, bytes)) = weblog::largest(per_day.into_iter().collect()) {
        writeln!(out, "busiest day: {day} {bytes} bytes")?;
    }
    let per_resource = hosts_of.into_iter().map(|(p, h)| (p, h.len() as u64)).collect();
    if let Some((path, hosts)) = weblog::largest(per_resource) {
        writeln!(out, "most widely requested resource: {path} {hosts} hosts")?;
    }
    Ok(out)
}

/// Average departure delay per carrier (`NA` skipped), printed like the `flights` job without
/// an airlines file: most delayed first.
pub fn flights(path: &Path) -> anyhow::Result<String> {
    let mut reader = csv::Reader::from_reader(open(path)?);
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).with_context(|| format!("no {name} column"))
    };
    let (carrier, delay) = (column("carrier")?, column("dep_delay")?);
    let mut totals: FxHashMap<String, (u64, u64, f64)> = FxHashMap::default();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let t = totals.entry(record[carrier].to_string()).or_default();
        t.0 += 1;
        match &record[delay] {
            "NA" | "" => {}
            d => {
                let d: f64 = d.parse().with_context(|| {
                    format!(
                        "line {}: bad dep_delay {d:?}",
                        record.position().map_or(0, |p| p.line())
                    )
                })?;
                t.1 += 1;
                t.2 += d;
            }
        }
    }
    let mut rows: Vec<(String, u64, u64, f64)> = totals
        .into_iter()
        .map(|(c, (n, delayed, sum))| {
            (c, n, delayed, if delayed > 0 { sum / delayed as f64 } else { f64::NAN })
        })
        .collect();
    rows.sort_by(|a, b| b.3.total_cmp(&a.3).then_with(|| a.0.cmp(&b.0)));
    let mut out = String::from("carrier name flights departed avg delay\n");
    for (c, n, delayed, avg) in rows {
        writeln!(out, "{c} {n} {delayed} {avg:.2}")?;
    }
    Ok(out)
}

/// Every flight with its airline's name (a hash lookup: the native form of the join), then the
/// totals per airline, printed like the `flights_join` job.
pub fn join(flights: &Path, airlines: &Path) -> anyhow::Result<String> {
    let mut names: FxHashMap<String, String> = FxHashMap::default();
    let mut reader = csv::Reader::from_reader(open(airlines)?);
    for row in reader.records() {
        let row = row.with_context(|| format!("bad row in {}", airlines.display()))?;
        names.insert(row[0].to_string(), row[1].to_string());
    }
    let mut reader = csv::Reader::from_reader(open(flights)?);
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).with_context(|| format!("no {name} column"))
    };
    let (carrier, delay) = (column("carrier")?, column("dep_delay")?);
    let mut totals: FxHashMap<&str, (u64, u64, f64)> = FxHashMap::default();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let Some((code, _)) = names.get_key_value(&record[carrier]) else { continue };
        let t = totals.entry(code.as_str()).or_default();
        t.0 += 1;
        match &record[delay] {
            "NA" | "" => {}
            d => {
                t.1 += 1;
                t.2 += d.parse::<f64>().with_context(|| format!("bad dep_delay {d:?}"))?;
            }
        }
    }
    let mut rows: Vec<(&str, u64, u64, f64)> = totals
        .into_iter()
        .map(|(c, (n, departed, sum))| {
            (c, n, departed, if departed > 0 { sum / departed as f64 } else { f64::NAN })
        })
        .collect();
    rows.sort_by(|a, b| b.3.total_cmp(&a.3).then_with(|| a.0.cmp(b.0)));
    let mut out = String::from("carrier flights departed avg_delay name\n");
    for (c, n, departed, avg) in rows {
        writeln!(out, "{c} {n} {departed} {avg:.2} {}", names[c])?;
    }
    Ok(out)
}

/// The records sorted by key in memory and written to `out/part-00000`; prints nothing (the
/// answer is read back from the file, as for every engine).
pub fn sort(input: &Path, out: &Path) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut records: Vec<(u64, u64)> = Vec::new();
    let mut reader = open(input)?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    anyhow::ensure!(line.trim_end() == "key,value", "{}: no key,value header", input.display());
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let text = line.trim_end();
        let parsed = text
            .split_once(',')
            .and_then(|(k, v)| Some((k.parse().ok()?, v.parse().ok()?)))
            .with_context(|| format!("{}: bad record {text:?}", input.display()))?;
        records.push(parsed);
    }
    records.sort_unstable();
    std::fs::create_dir_all(out)?;
    let file = std::fs::File::create(out.join("part-00000"))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    for (k, v) in records {
        writeln!(w, "{k},{v}")?;
    }
    w.flush()?;
    Ok(String::new())
}
