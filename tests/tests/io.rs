//! Sources and sinks: CSV errors and skipping, text output that appears only when complete, and
//! every transformation and action checked against a native computation.

use weft_tests::{guest, weft_run};

#[test]
fn a_bad_csv_row_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scores.csv"), "name,score\nann,3\nbob,x7\ncy,4\n").unwrap();
    let run = weft_run(&guest("csv_rows"), dir.path(), &[], &["scores.csv"]);
    run.assert_failed_with(&["scores.csv line 3, column 2 (score)", "invalid digit"]);
    std::fs::write(dir.path().join("short.csv"), "name,score\nann,3\nbob\n").unwrap();
    let run = weft_run(&guest("csv_rows"), dir.path(), &[], &["short.csv"]);
    run.assert_failed_with(&["short.csv line 3: expected 2 fields as in the header, found 1"]);
}

#[test]
fn a_bad_row_deep_in_a_split_csv_names_its_exact_line() {
    // ~3.4 MB read in 1 MiB splits: the bad row is in the last split, after quoted line breaks
    // in earlier splits, and its line number must still be exact.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("name,score\n");
    let mut line = 1;
    for i in 0..200_000 {
        if i % 1000 == 0 {
            text.push_str(&format!("\"two\nlines {i}\",1\n"));
            line += 2;
        } else {
            text.push_str(&format!("n{i},2\n"));
            line += 1;
        }
    }
    text.push_str("bad,x\n");
    text.push_str("last,3\n");
    std::fs::write(dir.path().join("big.csv"), &text).unwrap();
    let bad_line = line + 1;
    let run = weft_run(&guest("csv_rows"), dir.path(), &["--split-size", "1"], &["big.csv"]);
    run.assert_failed_with(&[&format!("big.csv line {bad_line}, column 2 (score)")]);
    // Skipping it, every other row is counted once, whichever split it fell in.
    let run =
        weft_run(&guest("csv_rows"), dir.path(), &["--split-size", "1"], &["big.csv", "skip"]);
    run.assert_ok();
    assert_eq!(run.stdout.trim(), format!("rows=200001 sum={}", 200 + 199_800 * 2 + 3));
}

#[test]
fn bad_csv_rows_can_be_skipped_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("scores.csv"),
        "name,score\nann,3\nbob,x7\n\"multi\nline\",5\ncy,4\nzed\n",
    )
    .unwrap();
    let run = weft_run(&guest("csv_rows"), dir.path(), &[], &["scores.csv", "skip"]);
    run.assert_ok();
    assert_eq!(run.stdout.trim(), "rows=3 sum=12");
    assert!(run.stderr.contains("skipped 2 malformed CSV row(s)"), "{}", run.stderr);
    assert!(run.stderr.contains("scores.csv line 3, column 2 (score)"), "{}", run.stderr);
}

#[test]
fn save_as_text_file_writes_one_part_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let run = weft_run(&guest("save_text"), dir.path(), &[], &["out/numbers", "1000"]);
    run.assert_ok();
    let out = dir.path().join("out/numbers");
    let mut parts: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    parts.sort();
    assert_eq!(parts, ["part-00000", "part-00001", "part-00002", "part-00003"]);
    let mut numbers: Vec<u32> = parts
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(out.join(p))
                .unwrap()
                .lines()
                .map(|l| l.parse().unwrap())
                .collect::<Vec<u32>>()
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=1000).collect::<Vec<_>>());
    // Nothing else was left next to it.
    let siblings: Vec<_> = std::fs::read_dir(dir.path().join("out")).unwrap().collect();
    assert_eq!(siblings.len(), 1);

    // Saving again into the same directory is refused, and the first output is untouched.
    let again = weft_run(&guest("save_text"), dir.path(), &[], &["out/numbers", "5"]);
    again.assert_failed_with(&["output directory `out/numbers` already exists"]);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4);
}

#[test]
fn a_failed_save_leaves_no_output_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let run = weft_run(&guest("save_text"), dir.path(), &[], &["broken", "1000", "fail"]);
    run.assert_failed_with(&["failing on purpose"]);
    let left: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn every_transformation_and_action_matches_native() {
    let dir = tempfile::tempdir().unwrap();
    let run = weft_run(&guest("pipeline"), dir.path(), &["--workers", "3"], &[]);
    run.assert_ok();
    let numbers: Vec<u64> = (1..=1000).collect();
    let evens: Vec<u64> =
        numbers.iter().map(|x| x + 3).filter(|x| x % 2 == 0 && *x <= 500).collect();
    let expanded: u64 =
        numbers.iter().flat_map(|&x| vec![x; (x % 3) as usize]).map(|x| x * 2).sum();
    let mut grouped: Vec<(u64, usize, u64)> = (0..4)
        .map(|k| {
            let vs: Vec<u64> = numbers.iter().filter(|x| *x % 4 == k).map(|x| x * 10).collect();
            (k, vs.len(), vs.iter().sum())
        })
        .collect();
    grouped.sort();
    let maxes: Vec<(u64, u64)> =
        (0..7).map(|k| (k, *numbers.iter().filter(|x| *x % 7 == k).max().unwrap())).collect();
    let expected = format!(
        "evens count: {}\ntake 3: {:?}\nfirst: {:?}\nexpanded sum: {:?}\nper partition: {:?}\ngrouped: {:?}\nmax by mod 7: {:?}\nabove mean: {}\nempty: count=0 first=None reduce=None\n",
        evens.len(),
        &evens[..3],
        evens.first(),
        Some(expanded),
        vec![200u64; 5],
        grouped,
        maxes,
        numbers.iter().filter(|&&x| x > numbers.iter().sum::<u64>() / 1000).count(),
    );
    assert_eq!(run.stdout, expected);
}
