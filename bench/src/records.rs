//! The sort workload's data: random `key,value` records, and the check of a sorted output.
//!
//! Keys are 63-bit (so that they fit Spark's signed `LONG` as well as Weft's `u64`), drawn from
//! a seeded SplitMix64 so that every run sorts the same bytes; the value is the record's line
//! number. An engine's answer is not its stdout but what it wrote: the part files, read in name
//! order, must be in key order, and their records are summarised by count, first and last key
//! and an order-independent checksum. Two engines that wrote the same records sorted agree,
//! whichever way they broke ties and however many parts they wrote.

use anyhow::{Context as _, bail};
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

/// The generator's seed.
const SEED: u64 = 0x5eed_5047;

/// SplitMix64: the next value of `state`.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Write `records` random records under a `key,value` header to `out`; returns its size.
pub fn generate(out: &Path, records: u64) -> anyhow::Result<u64> {
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(b"key,value\n")?;
    let mut state = SEED;
    for i in 0..records {
        writeln!(w, "{},{i}", next(&mut state) >> 1)?;
    }
    w.flush()?;
    Ok(std::fs::metadata(out)?.len())
}

/// The records of `dir`'s part files (`part-*`, in name order, other files such as `_SUCCESS`
/// ignored), checked to be in key order; their summary, as the engine's answer.
pub fn check_sorted(dir: &Path) -> anyhow::Result<String> {
    let mut parts: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("the sort wrote no output directory {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-")))
        .collect();
    parts.sort();
    if parts.is_empty() {
        bail!("the sort wrote no part files in {}", dir.display());
    }
    let (mut count, mut checksum) = (0u64, 0u64);
    let (mut first, mut last): (Option<u64>, Option<u64>) = (None, None);
    let mut line = String::new();
    for part in &parts {
        let file = std::fs::File::open(part)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let mut number = 0u64;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            number += 1;
            let where_ = || format!("{} line {number}", part.display());
            let text = line.trim_end_matches(['\n', '\r']);
            let (k, v) = text
                .split_once(',')
                .with_context(|| format!("{}: not a key,value record: {text:?}", where_()))?;
            let key: u64 = k.parse().with_context(|| format!("{}: bad key {k:?}", where_()))?;
            let value: u64 = v.parse().with_context(|| format!("{}: bad value {v:?}", where_()))?;
            if last.is_some_and(|l| key < l) {
                bail!("{}: key {key} comes after the larger key {}", where_(), last.unwrap_or(0));
            }
            first.get_or_insert(key);
            last = Some(key);
            count += 1;
            let mut state = key ^ value.rotate_left(32);
            checksum = checksum.wrapping_add(next(&mut state));
        }
    }
    Ok(format!(
        "{count} records in key order\nfirst key {}\nlast key {}\nchecksum {checksum:016x}\n",
        first.unwrap_or(0),
        last.unwrap_or(0)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_parts(dir: &Path, parts: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in parts {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn sorted_parts_in_name_order_pass_and_other_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        write_parts(
            dir.path(),
            &[("part-00001", "5,1\n9,0\n"), ("part-00000", "1,2\n5,3\n"), ("_SUCCESS", "")],
        );
        let answer = check_sorted(dir.path()).unwrap();
        assert!(
            answer.starts_with("4 records in key order\nfirst key 1\nlast key 9\n"),
            "{answer}"
        );
    }

    #[test]
    fn the_checksum_ignores_how_ties_and_parts_fall_but_not_the_records() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        write_parts(a.path(), &[("part-00000", "1,2\n5,3\n5,4\n")]);
        write_parts(b.path(), &[("part-00000", "1,2\n5,4\n"), ("part-00001", "5,3\n")]);
        write_parts(c.path(), &[("part-00000", "1,2\n5,3\n5,5\n")]);
        let answer = |d: &Path| check_sorted(d).unwrap();
        assert_eq!(answer(a.path()), answer(b.path()));
        assert_ne!(answer(a.path()), answer(c.path()));
    }

    #[test]
    fn out_of_order_keys_bad_lines_and_missing_parts_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write_parts(
            &dir.path().join("unsorted"),
            &[("part-00000", "3,0\n"), ("part-00001", "2,0\n")],
        );
        let e = check_sorted(&dir.path().join("unsorted")).unwrap_err().to_string();
        assert!(e.contains("part-00001 line 1") && e.contains("key 2 comes after"), "{e}");
        write_parts(&dir.path().join("bad"), &[("part-00000", "1,0\nseven,1\n")]);
        let e = format!("{:#}", check_sorted(&dir.path().join("bad")).unwrap_err());
        assert!(e.contains("line 2: bad key \"seven\""), "{e}");
        write_parts(&dir.path().join("empty"), &[("_SUCCESS", "")]);
        let e = check_sorted(&dir.path().join("empty")).unwrap_err().to_string();
        assert!(e.contains("no part files"), "{e}");
        let e = check_sorted(&dir.path().join("absent")).unwrap_err().to_string();
        assert!(e.contains("no output directory"), "{e}");
    }

    #[test]
    fn generated_records_are_the_same_every_time_with_63_bit_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        generate(&a, 1000).unwrap();
        generate(&b, 1000).unwrap();
        let text = std::fs::read_to_string(&a).unwrap();
        assert_eq!(text, std::fs::read_to_string(&b).unwrap());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!((lines.len(), lines[0]), (1001, "key,value"));
        let keys: Vec<u64> =
            lines[1..].iter().map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
        assert!(keys.iter().all(|k| *k < 1 << 63));
        assert!(keys.iter().any(|k| *k > 1 << 62), "keys span the range");
    }
}
