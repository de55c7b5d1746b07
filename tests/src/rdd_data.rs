//! The inputs of the `rdd_ops` guest, generated here, and their native computations.
//!
//! The data is made with a small generator of its own (no Weft code involved), written into a
//! data directory as the guest expects, and kept in memory so that each test computes the
//! expected answer of an operator directly with the standard library.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// The inputs.
pub struct RddData {
    /// `a.txt`: (key, value) pairs.
    pub a: Vec<(String, i64)>,
    /// `b.txt`: (key, value) pairs; keys overlap `a`'s in part.
    pub b: Vec<(String, i64)>,
    /// `words_a.txt`.
    pub words_a: Vec<String>,
    /// `words_b.txt`.
    pub words_b: Vec<String>,
    /// `nums.txt`.
    pub nums: Vec<i64>,
}

/// A linear congruential generator (Knuth's MMIX constants): enough for test data.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn word(i: u64) -> String {
    format!("{}{i}", (b'a' + (i % 8) as u8) as char)
}

impl RddData {
    /// Generate the inputs and write them into `dir`.
    pub fn write(dir: &Path) -> RddData {
        let mut rng = Lcg(12345);
        // Keys k0..k39 in a (k30.. only in a), k20..k49 in b (k40.. only in b).
        let a: Vec<(String, i64)> =
            (0..400).map(|_| (format!("k{}", rng.below(40)), rng.below(101) as i64 - 50)).collect();
        let b: Vec<(String, i64)> = (0..150)
            .map(|_| (format!("k{}", 20 + rng.below(30)), rng.below(1000) as i64 - 500))
            .collect();
        let words_a: Vec<String> = (0..300).map(|_| word(rng.below(40))).collect();
        let words_b: Vec<String> = (0..100).map(|_| word(25 + rng.below(35))).collect();
        let nums: Vec<i64> = (0..500).map(|_| rng.below(20_001) as i64 - 10_000).collect();
        let pairs =
            |v: &[(String, i64)]| v.iter().map(|(k, x)| format!("{k} {x}\n")).collect::<String>();
        let lines = |v: &[String]| v.iter().map(|w| format!("{w}\n")).collect::<String>();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("a.txt"), pairs(&a)).unwrap();
        std::fs::write(dir.join("b.txt"), pairs(&b)).unwrap();
        std::fs::write(dir.join("words_a.txt"), lines(&words_a)).unwrap();
        std::fs::write(dir.join("words_b.txt"), lines(&words_b)).unwrap();
        let nums_text: String = nums.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(dir.join("nums.txt"), nums_text).unwrap();
        std::fs::write(dir.join("empty.txt"), "").unwrap();
        RddData { a, b, words_a, words_b, nums }
    }

    /// The values of each key of `pairs`.
    pub fn groups(pairs: &[(String, i64)]) -> BTreeMap<String, Vec<i64>> {
        let mut groups: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (k, v) in pairs {
            groups.entry(k.clone()).or_default().push(*v);
        }
        groups.values_mut().for_each(|vs| vs.sort());
        groups
    }

    /// How often each item appears.
    pub fn counts<T: Ord + Clone>(items: &[T]) -> BTreeMap<T, u64> {
        let mut counts = BTreeMap::new();
        for x in items {
            *counts.entry(x.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// The distinct items.
    pub fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
        items.iter().cloned().collect()
    }

    /// The per-key values of `a` and `b` side by side, for every key of either.
    pub fn cogroup(&self) -> BTreeMap<String, (Vec<i64>, Vec<i64>)> {
        let (ga, gb) = (Self::groups(&self.a), Self::groups(&self.b));
        let keys: BTreeSet<&String> = ga.keys().chain(gb.keys()).collect();
        keys.into_iter()
            .map(|k| {
                let side = |g: &BTreeMap<String, Vec<i64>>| g.get(k).cloned().unwrap_or_default();
                (k.clone(), (side(&ga), side(&gb)))
            })
            .collect()
    }

    /// Per key of `pairs`, its values folded with `f`.
    pub fn reduce(pairs: &[(String, i64)], f: impl Fn(i64, i64) -> i64) -> HashMap<String, i64> {
        let mut out: HashMap<String, i64> = HashMap::new();
        for (k, v) in pairs {
            out.entry(k.clone()).and_modify(|x| *x = f(*x, *v)).or_insert(*v);
        }
        out
    }
}
