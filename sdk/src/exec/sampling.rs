//! Seeded randomness inside tasks: `sample`, and the key sample `sort_by_key` takes to choose its
//! ranges.
//!
//! Design choice: every task seeds its own generator from the user's seed and its partition
//! number, so a sample depends only on the seed and the input's partitioning — not on which
//! node ran the task, how often it was retried, or in what order tasks ran — as in Spark. The
//! generator is PCG (`rand_pcg`): small, fast in wasm, and the same on every platform.

use super::combine_table::hash_of;
use super::{Erased, Iter, decode_arg, set_op, task_partition};
use crate::{Record, Result};
use rand_pcg::Pcg64Mcg;
use rand_pcg::rand_core::{Rng, SeedableRng};

/// The generator of this task for `seed`.
pub(crate) fn task_rng(seed: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(seed ^ hash_of(&(task_partition(), 0x5eed_u32)))
}

/// A uniform float in `[0, 1)`.
fn unit(rng: &mut Pcg64Mcg) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A Poisson-distributed count of mean `mean`: Knuth's method on pieces of mean at most 16
/// (a sum of Poisson counts is Poisson with the summed mean), so `exp` never underflows.
fn poisson(rng: &mut Pcg64Mcg, mean: f64) -> u64 {
    let mut left = mean;
    let mut count = 0;
    while left > 0.0 {
        let piece = left.min(16.0);
        left -= piece;
        let limit = (-piece).exp();
        let mut p = unit(rng);
        while p > limit {
            count += 1;
            p *= unit(rng);
        }
    }
    count
}

/// `sample(with_replacement, fraction, seed)`: without replacement each record is kept with
/// probability `fraction`; with replacement each appears a Poisson(`fraction`) number of times.
pub(crate) fn sample<T: Record + Clone>(input: Erased, arg: &[u8], op: u32) -> Result<Erased> {
    let (with_replacement, fraction, seed): (bool, f64, u64) = decode_arg(arg, "sample")?;
    let mut rng = task_rng(seed);
    let records = input.into_iter::<T>()?;
    set_op(op);
    let it: Iter<T> = if with_replacement {
        Box::new(records.flat_map(move |x| {
            let n = poisson(&mut rng, fraction) as usize;
            std::iter::repeat_n(x, n)
        }))
    } else {
        Box::new(records.filter(move |_| unit(&mut rng) < fraction))
    };
    Ok(Erased::new(it))
}

/// Up to `size` items of `items` chosen uniformly (reservoir sampling), and how many items there
/// were.
pub(crate) fn reservoir<T>(
    items: impl Iterator<Item = T>,
    size: usize,
    seed: u64,
) -> (u64, Vec<T>) {
    let mut rng = task_rng(seed);
    let mut kept = Vec::with_capacity(size.min(1 << 16));
    let mut seen = 0u64;
    for x in items {
        seen += 1;
        if kept.len() < size {
            kept.push(x);
        } else {
            let j = rng.next_u64() % seen;
            if (j as usize) < size {
                kept[j as usize] = x;
            }
        }
    }
    (seen, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_counts_have_the_asked_mean() {
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        for mean in [0.1, 1.0, 2.5, 40.0] {
            let n = 20_000;
            let total: u64 = (0..n).map(|_| poisson(&mut rng, mean)).sum();
            let got = total as f64 / n as f64;
            // Five standard errors of the mean.
            assert!((got - mean).abs() < 5.0 * (mean / n as f64).sqrt(), "{mean}: {got}");
        }
    }

    #[test]
    fn a_reservoir_keeps_everything_when_it_can_and_counts_the_rest() {
        let (seen, kept) = reservoir(0..10, 20, 1);
        assert_eq!((seen, kept), (10, (0..10).collect::<Vec<_>>()));
        let (seen, kept) = reservoir(0..100_000u32, 100, 1);
        assert_eq!((seen, kept.len()), (100_000, 100));
        // Uniform: about half the kept items come from each half of the input.
        let low = kept.iter().filter(|&&x| x < 50_000).count();
        assert!((25..=75).contains(&low), "{low}");
    }
}
