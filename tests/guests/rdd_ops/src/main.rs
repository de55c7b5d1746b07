//! Runs the operator cases named on the command line over the files the test wrote into the data
//! directory, and prints one line per case: its name, a tab, and its result as JSON.
//!
//! Inputs (written by `tests/tests/rdd_api.rs`): `a.txt` and `b.txt` hold `key value` pairs
//! (duplicate keys, keys on one side only), `words_a.txt` and `words_b.txt` one word per line,
//! `nums.txt` one integer per line, `empty.txt` nothing. Datasets are spread over several
//! partitions (some of them empty) so that every operator meets partition boundaries.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use weft::prelude::*;

fn pair(line: String) -> (String, i64) {
    let (k, v) = line.split_once(' ').expect("`key value` lines");
    (k.to_string(), v.parse().expect("integer values"))
}

fn pairs(ctx: &Context, file: &str, partitions: u32) -> Dataset<(String, i64)> {
    ctx.text_file(file).map(pair).repartition(partitions)
}

fn lines(ctx: &Context, file: &str, partitions: u32) -> Dataset<String> {
    ctx.text_file(file).repartition(partitions)
}

fn nums(ctx: &Context) -> Dataset<i64> {
    ctx.text_file("nums.txt").map(|l: String| l.parse::<i64>().expect("integers")).repartition(6)
}

/// A map with its values sorted, so that the order within groups does not matter.
fn sorted_groups<V: Ord + serde::Serialize>(groups: Vec<(String, Vec<V>)>) -> Value {
    let map: BTreeMap<String, Vec<V>> = groups
        .into_iter()
        .map(|(k, mut vs)| {
            vs.sort();
            (k, vs)
        })
        .collect();
    json!(map)
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// SplitMix64: a well-mixed 64-bit value of `i` (the test computes the same natively).
fn splitmix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn run(ctx: &Context, case: &str) -> weft::Result<Value> {
    let a = || pairs(ctx, "a.txt", 5);
    let b = || pairs(ctx, "b.txt", 3);
    let empty = || pairs(ctx, "empty.txt", 2);
    Ok(match case {
        // The join family.
        "join" => json!(sorted(a().join(&b()).collect()?)),
        "join_empty" => json!(sorted(a().join(&empty()).collect()?)),
        "left_outer_join" => json!(sorted(a().left_outer_join(&b()).collect()?)),
        "left_outer_join_empty" => json!(sorted(a().left_outer_join(&empty()).collect()?)),
        "right_outer_join" => json!(sorted(a().right_outer_join(&b()).collect()?)),
        "full_outer_join" => json!(sorted(a().full_outer_join(&b()).collect()?)),
        "cogroup" => {
            let groups = a().cogroup(&b()).collect()?;
            let map: BTreeMap<String, (Vec<i64>, Vec<i64>)> =
                groups.into_iter().map(|(k, (v, w))| (k, (sorted(v), sorted(w)))).collect();
            json!(map)
        }
        "subtract_by_key" => json!(sorted(a().subtract_by_key(&b()).collect()?)),
        // Joining two datasets already partitioned alike, then through map_values.
        "copartitioned_join" => {
            let left = a().reduce_by_key_into(|x, y| x + y, 4).map_values(|v: i64| v * 10);
            let right = b().reduce_by_key_into(|x, y| x.max(y), 4);
            json!(sorted(left.join(&right).collect()?))
        }
        // Pair transformations.
        "fold_by_key" => json!(sorted(a().fold_by_key(0, |x, y| x + y).collect()?)),
        "combine_by_key" => {
            let sums = a().combine_by_key(
                |v: i64| (v, 1u64),
                |(s, n): (i64, u64), v: i64| (s + v, n + 1),
                |(s1, n1): (i64, u64), (s2, n2): (i64, u64)| (s1 + s2, n1 + n2),
            );
            json!(sorted(sums.collect()?))
        }
        "aggregate_by_key" => {
            let maxes = a().aggregate_by_key(i64::MIN, |m: i64, v: i64| m.max(v), |x, y| x.max(y));
            json!(sorted(maxes.collect()?))
        }
        "group_by_key" => sorted_groups(a().group_by_key().collect()?),
        "flat_map_values" => {
            let spread = a().flat_map_values(|v: i64| (0..v.rem_euclid(3)).map(move |i| v + i));
            json!(sorted(spread.collect()?))
        }
        "keys" => json!(sorted(a().keys().collect()?)),
        "values" => json!(sorted(a().values().collect()?)),
        "partition_by" => {
            let parts = a().partition_by(3).glom().collect()?;
            let keys: Vec<Vec<String>> = parts
                .into_iter()
                .map(|p| sorted(p.into_iter().map(|(k, _)| k).collect::<Vec<_>>()))
                .collect();
            json!(keys)
        }
        "count_by_key" => json!(a().count_by_key()?.into_iter().collect::<BTreeMap<_, _>>()),
        "collect_as_map" => {
            let last = a().reduce_by_key(|x, y| x.max(y));
            json!(last.collect_as_map()?.into_iter().collect::<BTreeMap<_, _>>())
        }
        "lookup" => json!(sorted(a().lookup(&"k3".to_string())?)),
        // Whole-dataset transformations.
        "union" => {
            json!(lines(ctx, "words_a.txt", 1).union(&lines(ctx, "words_b.txt", 1)).collect()?)
        }
        "union_partitions" => {
            let u = lines(ctx, "words_a.txt", 3).union(&lines(ctx, "words_b.txt", 2));
            json!(u.glom().collect()?.len())
        }
        "distinct" => json!(sorted(lines(ctx, "words_a.txt", 8).distinct().collect()?)),
        "intersection" => {
            let both = lines(ctx, "words_a.txt", 4).intersection(&lines(ctx, "words_b.txt", 3));
            json!(sorted(both.collect()?))
        }
        "subtract" => {
            let rest = lines(ctx, "words_a.txt", 4).subtract(&lines(ctx, "words_b.txt", 3));
            json!(sorted(rest.collect()?))
        }
        "cartesian" => {
            let small = ctx.parallelize(vec![1u32, 2, 3], 2);
            let words = ctx.parallelize(vec!["x".to_string(), "y".to_string()], 2);
            json!(sorted(small.cartesian(&words).collect()?))
        }
        "group_by" => {
            let groups = lines(ctx, "words_a.txt", 4)
                .group_by(|w: &String| w.chars().next().unwrap_or(' ').to_string());
            sorted_groups(groups.collect()?)
        }
        "sort_by_key" => {
            json!(a().sort_by_key(true).collect()?.into_iter().map(|(k, _)| k).collect::<Vec<_>>())
        }
        "sort_by_key_desc" => {
            let keys = a().sort_by_key_into(false, 3).collect()?;
            json!(keys.into_iter().map(|(k, _)| k).collect::<Vec<_>>())
        }
        "sort_by" => json!(nums(ctx).sort_by(|x: &i64| x.rem_euclid(1000), true).collect()?),
        "zip_with_index" => json!(lines(ctx, "words_a.txt", 5).zip_with_index().collect()?),
        "glom" => {
            let parts = lines(ctx, "words_a.txt", 4).glom().collect()?;
            json!(parts.iter().map(Vec::len).sum::<usize>())
        }
        "coalesce" => {
            let parts = ctx.text_file("words_a.txt").repartition(6).coalesce(2).glom().collect()?;
            json!({"partitions": parts.len(), "records": sorted(parts.concat())})
        }
        "repartition" => {
            let parts = ctx.text_file("words_a.txt").repartition(4).glom().collect()?;
            json!(parts.iter().map(Vec::len).collect::<Vec<_>>())
        }
        "sample" => {
            let ds = nums(ctx);
            let once = ds.sample(false, 0.3, 42).collect()?;
            let again = ds.sample(false, 0.3, 42).collect()?;
            let other = ds.sample(false, 0.3, 43).collect()?;
            let with = ds.sample(true, 2.0, 7).collect()?;
            json!({
                "same": once == again,
                "differs": once != other,
                "kept": once,
                "with_replacement": with,
            })
        }
        "sample_bad_fraction" => match nums(ctx).sample(false, 1.5, 1).count() {
            Ok(n) => json!({ "unexpected count": n }),
            Err(e) => json!(e.to_string()),
        },
        "range" => json!(ctx.range(10, 1010, 7).collect()?),
        // Actions.
        "take_ordered" => json!(nums(ctx).take_ordered(7)?),
        "top" => json!(nums(ctx).top(7)?),
        "take_ordered_empty" => json!(pairs(ctx, "empty.txt", 3).values().take_ordered(3)?),
        "max_min" => {
            json!([nums(ctx).max()?, nums(ctx).min()?, pairs(ctx, "empty.txt", 2).values().max()?])
        }
        "fold" => json!(nums(ctx).fold(0, |x, y| x + y)?),
        "aggregate" => json!(nums(ctx).aggregate(
            (0i64, 0u64),
            |(s, n), x| (s + x, n + 1),
            |(s1, n1), (s2, n2)| (s1 + s2, n1 + n2)
        )?),
        "count_by_value" => {
            let counts = lines(ctx, "words_a.txt", 3).count_by_value()?;
            json!(counts.into_iter().collect::<BTreeMap<_, _>>())
        }
        "for_each" => {
            let fine = nums(ctx).for_each(|x: i64| assert!(x.abs() <= 10_000));
            let over = nums(ctx).for_each(|x: i64| assert!(x < 9_000, "{x} is over 9000"));
            // `persist` is `cache`: the dataset is kept for the second action.
            let kept = nums(ctx).persist();
            let (n, m) = (kept.count()?, kept.filter(|x: &i64| *x >= 0).count()?);
            json!([fine.is_ok(), over.err().map(|e| e.to_string()), n, m])
        }
        "for_each_with" => {
            let max = nums(ctx).max()?.unwrap_or(0);
            let fine = nums(ctx).for_each_with(max, |max: &i64, x: i64| assert!(x <= *max));
            let over = nums(ctx).for_each_with(max - 1, |max: &i64, x: i64| {
                assert!(x <= *max, "{x} is over the limit");
            });
            json!([fine.is_ok(), over.err().map(|e| e.to_string())])
        }
        "sum" => json!([nums(ctx).sum()?, ctx.range(0, 100_001, 9).sum()?]),
        "stats" => {
            let s = nums(ctx).stats()?;
            json!([
                s.count,
                s.mean,
                s.sum,
                s.min,
                s.max,
                s.variance,
                s.stdev,
                s.sample_variance,
                s.sample_stdev
            ])
        }
        "mean_f32" => json!(nums(ctx).map(|x: i64| x as f32 / 4.0).mean()?),
        "histogram" => json!(nums(ctx).histogram(5)?),
        "histogram_same" => json!(ctx.parallelize(vec![3u8; 10], 3).histogram(4)?),
        "histogram_empty" => {
            json!(pairs(ctx, "empty.txt", 2).values().histogram(3).err().map(|e| e.to_string()))
        }
        "stats_empty" => {
            let s = pairs(ctx, "empty.txt", 2).values().stats()?;
            json!([s.count, s.sum, s.mean.is_nan(), s.min.is_infinite(), s.max.is_infinite()])
        }
        "sum_overflow" => {
            json!(ctx.parallelize(vec![200u8, 100], 1).sum().err().map(|e| e.to_string()))
        }
        // Accumulators: counted once per partition of each action that computes them.
        "accumulators" => {
            let lines = ctx.accumulator::<u64>("lines");
            let total = ctx.accumulator::<i64>("total");
            let half = ctx.accumulator::<f64>("half");
            let counted = nums(ctx).map_with(lines.clone(), |lines, x: i64| {
                lines.add(1);
                x
            });
            let n = counted.count()?;
            let after_one = lines.value();
            counted.for_each_with((total.clone(), half.clone()), |(total, half), x: i64| {
                total.add(x);
                half.add(0.5);
            })?;
            let after_two = lines.value();
            // An action that fails adds nothing, though some of its tasks succeeded.
            let failed = counted.for_each_with(total.clone(), |total, x: i64| {
                total.add(x);
                assert!(x < 9_000, "too big");
            });
            lines.add(5);
            json!([
                n,
                after_one,
                after_two,
                total.value(),
                half.value(),
                failed.is_err(),
                lines.value()
            ])
        }
        // 5 million random keys sorted into 8 partitions: per partition its size, first and last
        // key, the wrapping sum of its keys and whether it is in order.
        "big_sort" => {
            let keyed = ctx.range(0, 5_000_000, 16).map(|i: u64| (splitmix(i), i));
            let parts = keyed.sort_by_key_into(true, 8).map_partitions(
                |records: Box<dyn Iterator<Item = (u64, u64)>>| {
                    let (mut n, mut first, mut last, mut sum, mut sorted) =
                        (0u64, None, None, 0u64, true);
                    for (k, _) in records {
                        sorted &= last.is_none_or(|l| l <= k);
                        first.get_or_insert(k);
                        last = Some(k);
                        sum = sum.wrapping_add(k);
                        n += 1;
                    }
                    std::iter::once((n, first, last, sum, sorted))
                },
            );
            json!(parts.collect()?)
        }
        "sort_saved" => {
            let sorted = a().sort_by_key(true).map(|(k, v): (String, i64)| format!("{k} {v}"));
            sorted.save_as_text_file("sorted")?;
            json!("saved")
        }
        // A cached dataset is computed once for three actions, then again after unpersist.
        "cache" => {
            let computed = ctx.accumulator::<u64>("computed");
            let parsed = a()
                .map_with(computed.clone(), |computed, x: (String, i64)| {
                    computed.add(1);
                    x
                })
                .cache();
            let n = parsed.count()?;
            let sum = parsed.values().sum()?;
            let keys = parsed.keys().distinct().count()?;
            let after = computed.value();
            parsed.unpersist();
            let again = parsed.count()?;
            json!([n, sum, keys, after, again, computed.value()])
        }
        // A lookup table broadcast to the tasks: per key of `a`, the largest value of `b`.
        "broadcast" => {
            let largest: std::collections::HashMap<String, i64> =
                b().reduce_by_key(|x, y| x.max(y)).collect()?.into_iter().collect();
            let table = ctx.broadcast(largest);
            let looked_up = a()
                .filter_with(table.clone(), |t, (k, _): &(String, i64)| t.value().contains_key(k))
                .map_with(table.clone(), |t, (k, v): (String, i64)| {
                    let w = t.value()[&k];
                    (k, v + w)
                });
            let spread = a().flat_map_with(table, |t, (k, v): (String, i64)| {
                t.value().get(&k).map(|w| vec![v; (w.rem_euclid(3)) as usize]).unwrap_or_default()
            });
            json!([sorted(looked_up.collect()?), spread.count()?])
        }
        other => panic!("no case {other:?}"),
    })
}

fn main() -> weft::Result<()> {
    let ctx = Context::new();
    for case in ctx.args() {
        let value = run(&ctx, &case)?;
        println!("{case}\t{value}");
    }
    Ok(())
}
