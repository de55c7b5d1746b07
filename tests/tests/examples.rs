//! The example jobs on real data, compared with the same computation done natively here.

use std::collections::HashMap;
use weft_tests::wordcount::{native_counts, parse_counts, write_books};
use weft_tests::{flights_csv, guest, read_text, weft_run};

#[test]
fn word_count_over_a_directory_with_gzip_and_split_files_matches_native() {
    let dir = tempfile::tempdir().unwrap();
    let texts = write_books(&dir.path().join("books"));

    let run = weft_run(
        &guest("word_count"),
        dir.path(),
        &["--workers", "2", "--split-size", "1"],
        &["books", "1000000"],
    );
    run.assert_ok();
    let (total, counts) = parse_counts(&run.stdout);

    let expected = native_counts(&texts);
    assert_eq!(total, expected.values().sum::<u64>());
    assert_eq!(counts, expected);
}

#[test]
fn word_count_reads_globs_and_prints_the_top_words_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.log"), "b b a\nc b\n").unwrap();
    std::fs::write(dir.path().join("b.log"), "a c\nzz\n").unwrap();
    std::fs::write(dir.path().join("c.txt"), "not matched\n").unwrap();
    let run = weft_run(&guest("word_count"), dir.path(), &[], &["*.log", "3"]);
    run.assert_ok();
    let lines: Vec<Vec<&str>> =
        run.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines,
        vec![vec!["8", "words,", "4", "distinct"], vec!["3", "b"], vec!["2", "a"], vec!["2", "c"]]
    );
}

#[derive(Debug, Default, PartialEq)]
struct Carrier {
    flights: u64,
    departed: u64,
    avg: f64,
}

/// Per carrier: flights, flights with a delay, sum of delays; the csv crate over `text`.
fn native_flights(text: &str) -> HashMap<String, (u64, u64, f64)> {
    let mut native: HashMap<String, (u64, u64, f64)> = HashMap::new();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let carrier_at = headers.iter().position(|h| h == "carrier").unwrap();
    let delay_at = headers.iter().position(|h| h == "dep_delay").unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let entry = native.entry(record[carrier_at].to_string()).or_default();
        entry.0 += 1;
        if &record[delay_at] != "NA" {
            entry.1 += 1;
            entry.2 += record[delay_at].parse::<f64>().unwrap();
        }
    }
    assert!(native.len() >= 10, "the data has many carriers");
    native
}

/// Check the flights job's output against `native`.
fn assert_flights_match(stdout: &str, native: HashMap<String, (u64, u64, f64)>) {
    let mut from_weft: HashMap<String, Carrier> = HashMap::new();
    for line in stdout.lines().skip(1) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let n = parts.len();
        from_weft.insert(
            parts[0].to_string(),
            Carrier {
                flights: parts[n - 3].parse().unwrap(),
                departed: parts[n - 2].parse().unwrap(),
                avg: parts[n - 1].parse().unwrap(),
            },
        );
    }
    assert_eq!(from_weft.len(), native.len(), "{stdout}");
    for (carrier, (flights, departed, sum)) in native {
        let got = &from_weft[&carrier];
        assert_eq!((got.flights, got.departed), (flights, departed), "carrier {carrier}");
        let avg = sum / departed as f64;
        assert!((got.avg - avg).abs() < 0.006, "carrier {carrier}: weft {} native {avg}", got.avg);
    }
    // Sorted most delayed first.
    let avgs: Vec<f64> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect();
    assert!(avgs.windows(2).all(|w| w[0] >= w[1]), "{avgs:?}");
}

#[test]
fn flights_per_carrier_matches_native() {
    let (path, which) = flights_csv();
    eprintln!("flights test on the {which}: {}", path.display());
    let data = path.parent().unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let run = weft_run(&guest("flights"), data, &["--workers", "2"], &[name]);
    run.assert_ok();
    assert_flights_match(&run.stdout, native_flights(&read_text(&path)));
}

#[test]
fn a_large_plain_csv_is_read_in_splits_and_matches_native() {
    // The sample's rows four times over (~4 MB), every 997th row with a quoted line break in its
    // tail number, so that some split points fall near records that span lines; read in 1 MiB
    // splits, each of which must get the header and start at a record.
    let (path, _) = flights_csv();
    let sample = read_text(&path);
    let (header, body) = sample.split_once('\n').unwrap();
    let body: Vec<&str> = body.lines().take(10_000).collect();
    let mut text = format!("{header}\n");
    let tailnum = header.split(',').position(|h| h == "tailnum").unwrap();
    for round in 0..4 {
        for (i, line) in body.iter().enumerate() {
            if (round * body.len() + i).is_multiple_of(997) {
                let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
                fields[tailnum] = format!("\"{}\nsecond line\"", fields[tailnum]);
                text.push_str(&fields.join(","));
            } else {
                text.push_str(line);
            }
            text.push('\n');
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flights.csv"), &text).unwrap();
    let output = std::process::Command::new(weft_tests::weft_bin())
        .args(["run", "--workers", "2", "--split-size", "1", "--data-dir"])
        .arg(dir.path())
        .arg(guest("flights"))
        .args(["--", "flights.csv"])
        .env("WEFT_LOG", "weft_coordinator=debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let tasks = stderr
        .lines()
        .filter_map(|l| l.split("total=").nth(1))
        .filter_map(|n| n.trim_matches(|c: char| !c.is_ascii_digit()).parse::<u32>().ok())
        .max();
    assert!(tasks.is_some_and(|n| n >= 3), "expected several splits: {stderr}");
    assert_flights_match(&String::from_utf8_lossy(&output.stdout), native_flights(&text));
}

#[test]
fn flights_joins_airline_names_from_a_second_csv() {
    let repo = weft_tests::repo_root().join("guest-examples/flights/data");
    let run = weft_run(&guest("flights"), &repo, &[], &["flights-sample.csv.gz", "airlines.csv"]);
    run.assert_ok();
    let (carriers, routes) = run.stdout.split_once("\n\n").expect("two tables");
    // Every carrier's name, as airlines.csv gives it.
    let mut names = HashMap::new();
    for record in csv::Reader::from_path(repo.join("airlines.csv")).unwrap().records() {
        let record = record.unwrap();
        names.insert(record[0].to_string(), record[1].to_string());
    }
    let mut seen = 0;
    for line in carriers.lines().skip(1) {
        let carrier = line.split_whitespace().next().unwrap();
        let name = names.get(carrier).map_or("", String::as_str);
        assert!(line[8..].trim_start().starts_with(name), "{carrier}: {line}");
        seen += 1;
    }
    assert!(seen >= 10 && carriers.contains("United Air Lines Inc."), "{carriers}");
    // The ten routes with the most flights, ties by route, counted here with the csv crate.
    let text = read_text(&repo.join("flights-sample.csv.gz"));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (origin, dest) = (at("origin"), at("dest"));
    let mut counts: HashMap<(String, String), u64> = HashMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        *counts.entry((record[origin].to_string(), record[dest].to_string())).or_default() += 1;
    }
    let mut top: Vec<_> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let want: Vec<String> = top[..10].iter().map(|((o, d), n)| format!("{o} {d} {n}")).collect();
    let got: Vec<String> = routes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(got, want);
}

/// A deterministic access log of about `lines` lines: skewed hosts and resources, so that a
/// resource's hosts come from every split, and some malformed lines.
fn access_log(lines: usize) -> String {
    let mut state = 11u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        state >> 33
    };
    let mut out = String::new();
    for i in 0..lines {
        let (h, p, d, b) = (next(), next(), next(), next());
        let host = format!("host{}.example", (h % 600).min(h % 97 * 7));
        let path = format!("/page/{}.html", (p % 300).min(p % 13 * 17));
        if i % 97 == 5 {
            out.push_str(&format!("{host} - - garbage without a request\n"));
            continue;
        }
        let day = format!("{:02}/Jul/1995", 1 + d % 28);
        let bytes = if b % 11 == 0 { "-".to_string() } else { (b % 40_000).to_string() };
        out.push_str(&format!(
            "{host} - - [{day}:12:00:00 -0400] \"GET {path} HTTP/1.0\" 200 {bytes}\n"
        ));
    }
    out
}

#[test]
fn weblog_over_many_splits_matches_native() {
    // ~4 MB in 1 MiB splits: per-resource host sets are built in every split and merged after
    // the shuffle (`aggregate_by_key`), and must still count each host once.
    let dir = tempfile::tempdir().unwrap();
    let log = access_log(50_000);
    assert!(log.len() > 3 << 20);
    std::fs::write(dir.path().join("access.log"), &log).unwrap();

    let (mut malformed, mut bytes) = (0u64, 0u64);
    let mut per_host: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut per_day: HashMap<&str, u64> = HashMap::new();
    let mut hosts_of: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    for line in log.lines() {
        let Some(r) = weblog::parse(line) else {
            malformed += 1;
            continue;
        };
        bytes += r.bytes;
        let host = per_host.entry(r.host).or_default();
        *host = (host.0 + 1, host.1 + r.bytes);
        *per_day.entry(r.day).or_default() += r.bytes;
        hosts_of.entry(r.path).or_default().insert(r.host);
    }
    assert!(malformed > 0 && hosts_of.len() > 100);
    let owned = |m: Vec<(&str, u64)>| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let (day, day_bytes) = weblog::largest(owned(per_day.into_iter().collect())).unwrap();
    let widest = hosts_of.iter().map(|(p, h)| (*p, h.len() as u64)).collect();
    let (path, hosts) = weblog::largest(owned(widest)).unwrap();
    let top = weblog::top_hosts(per_host.iter().map(|(h, t)| (h.to_string(), *t)).collect(), 3);

    let run = weft_run(
        &guest("weblog"),
        dir.path(),
        &["--workers", "2", "--split-size", "1"],
        &["access.log", "3"],
    );
    run.assert_ok();
    let total = log.lines().count() as u64;
    let mut expected = vec![
        format!("{total} lines, {} parsed, {malformed} malformed", total - malformed),
        format!("{} hosts, {bytes} bytes", per_host.len()),
        "top 3 hosts by requests:".to_string(),
    ];
    expected.extend(top.iter().map(|(h, (r, b))| format!("{r:>10} {b:>14}  {h}")));
    expected.push(format!("busiest day: {day} {day_bytes} bytes"));
    expected.push(format!("most widely requested resource: {path} {hosts} hosts"));
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn weblog_samples_the_same_lines_for_the_same_input_and_counts_its_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let log = access_log(20_000);
    std::fs::write(dir.path().join("access.log"), &log).unwrap();
    let sample = |fraction: &str| {
        let args = ["access.log", "3", fraction];
        let run = weft_run(&guest("weblog"), dir.path(), &["--split-size", "1"], &args);
        run.assert_ok();
        let line = run.stdout.lines().last().unwrap().to_string();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[..3], ["sample", "of", &format!("{fraction}:")], "{line}");
        (line.clone(), words[3].parse::<u64>().unwrap(), words[5].parse::<u64>().unwrap())
    };
    let (first, lines, hosts) = sample("0.25");
    assert_eq!(sample("0.25").0, first, "the same seed and input give the same sample");
    // Bernoulli(0.25) over every line: within five standard deviations of a quarter.
    let total = log.lines().count() as f64;
    let sd = (total * 0.25 * 0.75).sqrt();
    assert!((lines as f64 - total * 0.25).abs() < 5.0 * sd, "{lines} of {total}");
    let all_hosts: std::collections::HashSet<&str> =
        log.lines().filter_map(weblog::parse).map(|r| r.host).collect();
    assert!(hosts > 0 && hosts <= all_hosts.len() as u64, "{hosts} of {}", all_hosts.len());
    assert_eq!(sample("1").1, total as u64, "a fraction of 1 keeps every line");
    let bad = weft_run(&guest("weblog"), dir.path(), &[], &["access.log", "3", "1.5"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("FRACTION must be a number between 0 and 1"), "{}", bad.stderr);
}

#[test]
fn engagement_ratios_from_hyperloglog_sketches_match_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let module = guest("engagement");
    weft_run(&module, dir.path(), &[], &["generate", "pings", "3000"]).assert_ok();
    std::fs::write(dir.path().join("pings/broken"), "not a ping\n").unwrap();
    let run = weft_run(&module, dir.path(), &["--workers", "2"], &["pings/*"]);
    run.assert_ok();
    // Exact counts, from the files, with sets.
    type Days = HashMap<u32, std::collections::HashSet<String>>;
    let mut seen: HashMap<(String, String), Days> = HashMap::new();
    let mut lines = 0;
    for entry in std::fs::read_dir(dir.path().join("pings")).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let f: Vec<&str> = line.split(',').collect();
            let day: u32 = f[1].parse::<u32>().unwrap() - 20_260_201;
            for (segment, value) in ["os", "country", "channel"].iter().zip(&f[2..5]) {
                let days = seen.entry((segment.to_string(), value.to_string())).or_default();
                days.entry(day).or_default().insert(f[0].to_string());
            }
            lines += 1;
        }
    }
    assert!(lines > 10_000, "{lines} pings");
    let mut checked = 0;
    for line in run.stdout.lines().skip(1).filter(|l| !l.ends_with("skipped")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dau, mau, ratio): (f64, f64, f64) =
            (f[2].parse().unwrap(), f[3].parse().unwrap(), f[4].parse().unwrap());
        let days = &seen[&(f[0].to_string(), f[1].to_string())];
        let exact_mau = days.values().flatten().collect::<std::collections::HashSet<_>>().len();
        let exact_dau = days.values().map(|c| c.len()).sum::<usize>() as f64 / 28.0;
        // Four standard errors of a precision-14 sketch (0.81% each), and a little rounding.
        let close = |got: f64, want: f64| (got - want).abs() <= 0.033 * want + 0.6;
        assert!(close(mau, exact_mau as f64), "{line}: MAU {exact_mau}");
        assert!(close(dau, exact_dau), "{line}: DAU {exact_dau}");
        let exact_ratio = exact_dau / exact_mau as f64;
        assert!((ratio - exact_ratio).abs() <= 0.07 * exact_ratio + 0.001, "{line}: {exact_ratio}");
        checked += 1;
    }
    assert_eq!(checked, seen.len(), "one line per segment value:\n{}", run.stdout);
    assert!(run.stdout.ends_with("1 lines skipped\n"), "{}", run.stdout);
}
