//! Every operator of the SDK's RDD API on the embedded engine, through the `rdd_ops` guest,
//! each checked against the same computation done natively here with the standard library;
//! the joins, sorting and `distinct` also on a coordinator with three nodes.

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use weft_tests::cluster::Coordinator;
use weft_tests::rdd_data::RddData;
use weft_tests::{guest, weft_run};

/// The guest's results by case, from its `case<TAB>json` lines.
fn results(stdout: &str) -> HashMap<String, Value> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(case, json)| (case.to_string(), serde_json::from_str(json).expect("JSON")))
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// Each value of `got` as an `f64`.
fn floats(got: &Value) -> Vec<f64> {
    got.as_array().expect("an array").iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect()
}

fn ints(got: &Value) -> Vec<i64> {
    serde_json::from_value(got.clone()).expect("integers")
}

/// What case `case` must give on `d`: `Ok(())` or what is wrong.
fn check(case: &str, got: &Value, d: &RddData) -> Result<(), String> {
    let exact = |want: Value| if *got == want { Ok(()) } else { Err(format!("want {want}")) };
    type Pairs = Vec<(Option<i64>, Option<i64>)>;
    let cross = |f: &dyn Fn(&[i64], &[i64]) -> Pairs| {
        let mut out = Vec::new();
        for (k, (vs, ws)) in d.cogroup() {
            out.extend(f(&vs, &ws).into_iter().map(|p| (k.clone(), p)));
        }
        sorted(out)
    };
    let both = |vs: &[i64], ws: &[i64]| -> Pairs {
        vs.iter().flat_map(|v| ws.iter().map(move |w| (Some(*v), Some(*w)))).collect()
    };
    let sum_a = RddData::reduce(&d.a, |x, y| x + y);
    match case {
        "join" => {
            let pairs = cross(&both);
            exact(json!(
                pairs
                    .into_iter()
                    .map(|(k, (v, w))| (k, (v.unwrap(), w.unwrap())))
                    .collect::<Vec<_>>()
            ))
        }
        "join_empty" => exact(json!([])),
        "left_outer_join" => {
            let pairs = cross(&|vs, ws| {
                if ws.is_empty() {
                    vs.iter().map(|v| (Some(*v), None)).collect()
                } else {
                    both(vs, ws)
                }
            });
            let pairs: Vec<_> = pairs.into_iter().map(|(k, (v, w))| (k, (v.unwrap(), w))).collect();
            exact(json!(pairs))
        }
        "left_outer_join_empty" => {
            exact(json!(sorted(d.a.iter().map(|(k, v)| (k.clone(), (*v, None::<i64>))).collect())))
        }
        "right_outer_join" => {
            let pairs = cross(&|vs, ws| {
                if vs.is_empty() {
                    ws.iter().map(|w| (None, Some(*w))).collect()
                } else {
                    both(vs, ws)
                }
            });
            let pairs: Vec<_> = pairs.into_iter().map(|(k, (v, w))| (k, (v, w.unwrap()))).collect();
            exact(json!(pairs))
        }
        "full_outer_join" => exact(json!(cross(&|vs, ws| {
            if ws.is_empty() {
                vs.iter().map(|v| (Some(*v), None)).collect()
            } else if vs.is_empty() {
                ws.iter().map(|w| (None, Some(*w))).collect()
            } else {
                both(vs, ws)
            }
        }))),
        "cogroup" => exact(json!(d.cogroup())),
        "subtract_by_key" => {
            let right = RddData::set(&d.b.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
            exact(json!(sorted(d.a.iter().filter(|(k, _)| !right.contains(k)).cloned().collect())))
        }
        "copartitioned_join" => {
            let max_b = RddData::reduce(&d.b, i64::max);
            let mut pairs: Vec<(String, (i64, i64))> = sum_a
                .iter()
                .filter_map(|(k, s)| max_b.get(k).map(|m| (k.clone(), (s * 10, *m))))
                .collect();
            pairs.sort();
            exact(json!(pairs))
        }
        "fold_by_key" => exact(json!(sorted(sum_a.clone().into_iter().collect()))),
        "combine_by_key" => {
            let groups = RddData::groups(&d.a);
            let avg: Vec<_> = groups
                .into_iter()
                .map(|(k, vs)| (k, (vs.iter().sum::<i64>(), vs.len() as u64)))
                .collect();
            exact(json!(avg))
        }
        "aggregate_by_key" => {
            exact(json!(sorted(RddData::reduce(&d.a, i64::max).into_iter().collect())))
        }
        "group_by_key" => exact(json!(RddData::groups(&d.a))),
        "flat_map_values" => {
            let spread =
                d.a.iter().flat_map(|(k, v)| (0..v.rem_euclid(3)).map(move |i| (k.clone(), v + i)));
            exact(json!(sorted(spread.collect())))
        }
        "keys" => exact(json!(sorted(d.a.iter().map(|(k, _)| k.clone()).collect()))),
        "values" => exact(json!(sorted(d.a.iter().map(|(_, v)| *v).collect()))),
        "partition_by" => {
            let parts: Vec<Vec<String>> = serde_json::from_value(got.clone()).unwrap();
            if parts.len() != 3 {
                return Err(format!("{} partitions, not 3", parts.len()));
            }
            let all = sorted(parts.concat());
            if all != sorted(d.a.iter().map(|(k, _)| k.clone()).collect()) {
                return Err("records lost or added".into());
            }
            for (i, p) in parts.iter().enumerate() {
                for (j, q) in parts.iter().enumerate().skip(i + 1) {
                    if let Some(k) = p.iter().find(|k| q.contains(k)) {
                        return Err(format!("key {k} in partitions {i} and {j}"));
                    }
                }
            }
            Ok(())
        }
        "count_by_key" => {
            exact(json!(RddData::counts(&d.a.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())))
        }
        "collect_as_map" => {
            exact(json!(RddData::reduce(&d.a, i64::max).into_iter().collect::<BTreeMap<_, _>>()))
        }
        "lookup" => exact(json!(RddData::groups(&d.a).get("k3").cloned().unwrap_or_default())),
        "union" => exact(json!([d.words_a.clone(), d.words_b.clone()].concat())),
        "union_partitions" => exact(json!(5)),
        "distinct" => exact(json!(RddData::set(&d.words_a))),
        "intersection" => {
            let b = RddData::set(&d.words_b);
            exact(json!(
                RddData::set(&d.words_a).into_iter().filter(|w| b.contains(w)).collect::<Vec<_>>()
            ))
        }
        "subtract" => {
            let b = RddData::set(&d.words_b);
            exact(json!(sorted(d.words_a.iter().filter(|w| !b.contains(*w)).cloned().collect())))
        }
        "cartesian" => exact(json!([[1, "x"], [1, "y"], [2, "x"], [2, "y"], [3, "x"], [3, "y"]])),
        "group_by" => {
            let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for w in &d.words_a {
                groups.entry(w[..1].to_string()).or_default().push(w.clone());
            }
            groups.values_mut().for_each(|g| g.sort());
            exact(json!(groups))
        }
        "sort_by_key" => exact(json!(sorted(d.a.iter().map(|(k, _)| k.clone()).collect()))),
        "sort_by_key_desc" => {
            let mut keys = sorted(d.a.iter().map(|(k, _)| k.clone()).collect());
            keys.reverse();
            exact(json!(keys))
        }
        "sort_by" => {
            let got = ints(got);
            let keys: Vec<i64> = got.iter().map(|x| x.rem_euclid(1000)).collect();
            if !keys.is_sorted() {
                return Err("not sorted by the key".into());
            }
            if sorted(got) != sorted(d.nums.clone()) {
                Err("records differ".into())
            } else {
                Ok(())
            }
        }
        "zip_with_index" => {
            let zipped: Vec<(String, u64)> = serde_json::from_value(got.clone()).unwrap();
            if let Some((i, z)) = zipped.iter().enumerate().find(|(i, z)| z.1 != *i as u64) {
                return Err(format!("record {i} has index {}", z.1));
            }
            let words = sorted(zipped.into_iter().map(|z| z.0).collect());
            if words != sorted(d.words_a.clone()) { Err("records differ".into()) } else { Ok(()) }
        }
        "glom" => exact(json!(d.words_a.len())),
        "coalesce" => exact(json!({"partitions": 2, "records": sorted(d.words_a.clone())})),
        "repartition" => {
            let sizes = ints(got);
            let (min, max) = (sizes.iter().min(), sizes.iter().max());
            let fine = sizes.len() == 4
                && sizes.iter().sum::<i64>() == d.words_a.len() as i64
                && max.zip(min).is_some_and(|(max, min)| max - min <= 1);
            if fine { Ok(()) } else { Err("not 4 balanced partitions of every record".into()) }
        }
        "sample" => {
            if got["same"] != json!(true) || got["differs"] != json!(true) {
                return Err("the same seed must give the same sample, another seed another".into());
            }
            let counts = RddData::counts(&d.nums);
            for (key, lo, hi) in [("kept", 99, 201), ("with_replacement", 840, 1160)] {
                let kept = ints(&got[key]);
                if !(lo..=hi).contains(&kept.len()) {
                    return Err(format!("{key}: {} records, expected {lo}..={hi}", kept.len()));
                }
                let max_copies = if key == "kept" { 1 } else { u64::MAX };
                for (x, n) in RddData::counts(&kept) {
                    if counts.get(&x).is_none_or(|&c| n > c.saturating_mul(max_copies)) {
                        return Err(format!("{key}: {x} appears {n} times"));
                    }
                }
            }
            Ok(())
        }
        "sample_bad_fraction" => {
            let text = got.as_str().unwrap_or_default();
            if text.contains("the fraction must be between 0 and 1, not 1.5") {
                Ok(())
            } else {
                Err("no clear error".into())
            }
        }
        "range" => exact(json!((10..1010).collect::<Vec<u64>>())),
        "take_ordered" => exact(json!(sorted(d.nums.clone())[..7])),
        "top" => {
            let mut all = sorted(d.nums.clone());
            all.reverse();
            exact(json!(all[..7]))
        }
        "take_ordered_empty" => exact(json!([])),
        "max_min" => exact(json!([d.nums.iter().max(), d.nums.iter().min(), null])),
        "fold" => exact(json!(d.nums.iter().sum::<i64>())),
        "aggregate" => exact(json!([d.nums.iter().sum::<i64>(), d.nums.len()])),
        "count_by_value" => exact(json!(RddData::counts(&d.words_a))),
        "for_each" => {
            let ok = got[0] == json!(true);
            let err = got[1].as_str().is_some_and(|e| e.contains("is over 9000"));
            let counts = [got[2].clone(), got[3].clone()];
            let want = [json!(d.nums.len()), json!(d.nums.iter().filter(|x| **x >= 0).count())];
            if ok && err && counts == want {
                Ok(())
            } else {
                Err("f must run on every record".into())
            }
        }
        "for_each_with" => {
            let ok = got[0] == json!(true);
            let err = got[1].as_str().is_some_and(|e| e.contains("is over the limit"));
            if ok && err { Ok(()) } else { Err("f must run on every record".into()) }
        }
        "sum" => exact(json!([d.nums.iter().sum::<i64>(), 5_000_050_000u64])),
        "stats" => {
            let xs: Vec<f64> = d.nums.iter().map(|&x| x as f64).collect();
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let m2 = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
            let want = [
                n,
                mean,
                xs.iter().sum(),
                xs.iter().cloned().fold(f64::INFINITY, f64::min),
                xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                m2 / n,
                (m2 / n).sqrt(),
                m2 / (n - 1.0),
                (m2 / (n - 1.0)).sqrt(),
            ];
            let got = floats(got);
            if got.len() == want.len() && got.iter().zip(want).all(|(g, w)| close(*g, w)) {
                Ok(())
            } else {
                Err(format!("want {want:?}"))
            }
        }
        "mean_f32" => {
            let mean = d.nums.iter().map(|&x| f64::from(x as f32 / 4.0)).sum::<f64>()
                / d.nums.len() as f64;
            if got.as_f64().is_some_and(|g| (g - mean).abs() < 1e-6 * mean.abs().max(1.0)) {
                Ok(())
            } else {
                Err(format!("want {mean}"))
            }
        }
        "histogram" => {
            let (min, max) =
                (*d.nums.iter().min().unwrap() as f64, *d.nums.iter().max().unwrap() as f64);
            let span = max - min;
            let mut edges: Vec<f64> = (0..5).map(|i| min + i as f64 * span / 5.0).collect();
            edges.push(max);
            let mut counts = [0u64; 5];
            for &x in &d.nums {
                counts[(((x as f64 - min) / span * 5.0) as usize).min(4)] += 1;
            }
            let (got_edges, got_counts) = (floats(&got[0]), &got[1]);
            let fine =
                got_edges.len() == 6 && got_edges.iter().zip(&edges).all(|(g, w)| close(*g, *w));
            if fine && *got_counts == json!(counts) {
                Ok(())
            } else {
                Err(format!("want {edges:?} {counts:?}"))
            }
        }
        "histogram_same" => exact(json!([[3.0, 3.0], [10]])),
        "histogram_empty" => {
            let text = got.as_str().unwrap_or_default();
            if text.contains("histogram of an empty dataset") {
                Ok(())
            } else {
                Err("no clear error".into())
            }
        }
        "stats_empty" => exact(json!([0, 0.0, true, true, true])),
        "sum_overflow" => {
            if got.as_str().is_some_and(|e| e.contains("overflows u8")) {
                Ok(())
            } else {
                Err("no clear error".into())
            }
        }
        "cache" => {
            let sum: i64 = d.a.iter().map(|(_, v)| v).sum();
            let keys = RddData::set(&d.a.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()).len();
            exact(json!([400, sum, keys, 400, 400, 800]))
        }
        "broadcast" => {
            let largest = RddData::reduce(&d.b, i64::max);
            let looked_up: Vec<(String, i64)> =
                d.a.iter()
                    .filter_map(|(k, v)| largest.get(k).map(|w| (k.clone(), v + w)))
                    .collect();
            let spread: i64 =
                d.a.iter().filter_map(|(k, _)| largest.get(k)).map(|w| w.rem_euclid(3)).sum();
            exact(json!([sorted(looked_up), spread]))
        }
        "accumulators" => {
            let sum: i64 = d.nums.iter().sum();
            exact(json!([500, 500, 1000, sum, 250.0, true, 1005]))
        }
        other => Err(format!("no check for case {other}")),
    }
}

/// At most 400 characters of `text`.
fn clip(text: &str) -> String {
    match text.char_indices().nth(400) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text.to_string(),
    }
}

/// Run `cases` through `run` and check every one; fail with all the mismatches at once.
fn check_all(cases: &[&str], d: &RddData, stdout: &str) {
    let got = results(stdout);
    let mut wrong = Vec::new();
    for case in cases {
        match got.get(*case) {
            None => wrong.push(format!("{case}: no result")),
            Some(value) => {
                if let Err(why) = check(case, value, d) {
                    let got = value.to_string();
                    wrong.push(format!("{case}: {}\n  got {}", clip(&why), clip(&got)));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

fn run_local(cases: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let d = RddData::write(dir.path());
    let run = weft_run(&guest("rdd_ops"), dir.path(), &["--workers", "3"], cases);
    run.assert_ok();
    check_all(cases, &d, &run.stdout);
}

const JOINS: &[&str] = &[
    "join",
    "join_empty",
    "left_outer_join",
    "left_outer_join_empty",
    "right_outer_join",
    "full_outer_join",
    "cogroup",
    "subtract_by_key",
    "copartitioned_join",
];

#[test]
fn joins_and_cogroup_match_a_native_computation() {
    run_local(JOINS);
}

#[test]
fn pair_transformations_and_actions_match_a_native_computation() {
    run_local(&[
        "fold_by_key",
        "combine_by_key",
        "aggregate_by_key",
        "group_by_key",
        "flat_map_values",
        "keys",
        "values",
        "partition_by",
        "count_by_key",
        "collect_as_map",
        "lookup",
    ]);
}

#[test]
fn whole_dataset_transformations_match_a_native_computation() {
    run_local(&[
        "union",
        "union_partitions",
        "distinct",
        "intersection",
        "subtract",
        "cartesian",
        "group_by",
        "sort_by_key",
        "sort_by_key_desc",
        "sort_by",
        "zip_with_index",
        "glom",
        "coalesce",
        "repartition",
        "sample",
        "sample_bad_fraction",
        "range",
    ]);
}

#[test]
fn actions_and_statistics_match_a_native_computation() {
    run_local(&[
        "take_ordered",
        "top",
        "take_ordered_empty",
        "max_min",
        "fold",
        "aggregate",
        "count_by_value",
        "for_each",
        "for_each_with",
        "sum",
        "stats",
        "mean_f32",
        "histogram",
        "histogram_same",
        "histogram_empty",
        "stats_empty",
        "sum_overflow",
    ]);
}

#[test]
fn broadcast_values_are_read_by_every_operator_that_takes_one() {
    run_local(&["broadcast"]);
}

#[test]
fn accumulators_count_each_partition_of_each_successful_action_once() {
    run_local(&["accumulators"]);
}

#[test]
fn a_cached_dataset_is_computed_once_for_several_actions_and_again_after_unpersist() {
    let dir = tempfile::tempdir().unwrap();
    let d = RddData::write(dir.path());
    let run = weft_run(&guest("rdd_ops"), dir.path(), &["--workers", "3"], &["cache"]);
    run.assert_ok();
    check_all(&["cache"], &d, &run.stdout);
    // The engine's own account, action by action: computed and kept, read twice, then (after
    // unpersist) computed without being kept.
    let lines: Vec<&str> = run.stderr.lines().filter(|l| l.contains("cache: ")).collect();
    let want = [
        "cache: 0 partitions kept from earlier actions, 5 computed",
        "cache: 5 partitions kept from earlier actions, 0 computed",
        "cache: 5 partitions kept from earlier actions, 0 computed",
    ];
    assert_eq!(lines.len(), want.len(), "{}", run.stderr);
    for (line, want) in lines.iter().zip(want) {
        assert!(line.ends_with(want), "{line:?} is not {want:?}\n{}", run.stderr);
    }
}

#[test]
fn a_sorted_dataset_saves_parts_whose_concatenation_is_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let d = RddData::write(dir.path());
    weft_run(&guest("rdd_ops"), dir.path(), &["--workers", "3"], &["sort_saved"]).assert_ok();
    let mut parts: Vec<_> = std::fs::read_dir(dir.path().join("sorted"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("part-"))
        .collect();
    parts.sort();
    assert_eq!(parts.len(), 5, "as many parts as the parent's partitions: {parts:?}");
    let text: String = parts.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    let keys: Vec<String> =
        text.lines().map(|l| l.split(' ').next().unwrap().to_string()).collect();
    assert!(keys.is_sorted(), "the parts' concatenation is not sorted");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    let mut want: Vec<String> = d.a.iter().map(|(k, v)| format!("{k} {v}")).collect();
    want.sort();
    assert_eq!(lines, want);
}

/// SplitMix64, as the guest computes its keys.
fn splitmix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn five_million_random_keys_sort_into_eight_balanced_partitions_in_global_order() {
    let dir = tempfile::tempdir().unwrap();
    RddData::write(dir.path());
    let run = weft_run(&guest("rdd_ops"), dir.path(), &["--workers", "2"], &["big_sort"]);
    run.assert_ok();
    type Part = (u64, Option<u64>, Option<u64>, u64, bool);
    let parts: Vec<Part> =
        serde_json::from_value(results(&run.stdout)["big_sort"].clone()).unwrap();
    assert_eq!(parts.len(), 8);
    let n = 5_000_000u64;
    let (mut min, mut max, mut sum) = (u64::MAX, 0u64, 0u64);
    for i in 0..n {
        let k = splitmix(i);
        (min, max, sum) = (min.min(k), max.max(k), sum.wrapping_add(k));
    }
    assert_eq!(parts.iter().map(|p| p.0).sum::<u64>(), n, "every record, once");
    assert_eq!(parts.iter().fold(0u64, |s, p| s.wrapping_add(p.3)), sum, "the same keys");
    assert!(parts.iter().all(|p| p.4), "each partition sorted: {parts:?}");
    for pair in parts.windows(2) {
        assert!(pair[0].2 < pair[1].1, "partitions out of order: {parts:?}");
    }
    assert_eq!((parts[0].1, parts[7].2), (Some(min), Some(max)));
    let largest = parts.iter().map(|p| p.0).max().unwrap();
    assert!(largest * 8 <= n * 3 / 2, "a partition of {largest} of {n} records: {parts:?}");
}

#[test]
fn joins_sorting_and_distinct_on_a_cluster_of_three_nodes_match_a_native_computation() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let nodes: Vec<_> =
        (1..=3).map(|i| c.node(dir.path(), &format!("n{i}"), &c.join_token(), 2)).collect();
    c.wait_for_nodes(nodes.len(), Duration::from_secs(20));
    let d = RddData::write(&dir.path().join("data"));
    let mut cases: Vec<&str> = JOINS.to_vec();
    cases.extend(["sort_by_key", "sort_by_key_desc", "sort_by", "distinct", "intersection"]);
    let module = guest("rdd_ops");
    let mut args = vec![module.to_str().unwrap(), "--follow", "--"];
    args.extend(&cases);
    let run = c.client("submit", &args);
    run.assert_ok();
    check_all(&cases, &d, &run.stdout);
    // Counters travel with heartbeats, every second.
    std::thread::sleep(Duration::from_millis(2500));
    let status = c.status();
    let busy = status.per_node("tasks").iter().filter(|(_, _, tasks)| *tasks > 0).count();
    assert!(busy >= 2, "tasks ran on several nodes: {:?}", status.per_node("tasks"));
    assert!(status.nodes_sum("shuffle_bytes_fetched") > 0, "shuffles went node to node");
}
