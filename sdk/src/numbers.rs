//! Actions on datasets of numbers: [`Number`], `sum`, `mean`, `stats` and `histogram`, with
//! Spark's semantics (`StatCounter`, `DoubleRDDFunctions.histogram`).
//!
//! Design choice: every task summarises its partition into a [`Summary`] — count, mean, sum of
//! squared deviations (Welford), min, max — and the driver merges the summaries with Chan's
//! formula, so the records never leave their tasks and the variance is numerically stable. A sum
//! is kept in the record type (exact for integers, and an overflow is an error rather than a
//! wrapped result); everything else is `f64`.

use crate::dataset::encode_value;
use crate::exec::{self, fn_ref_sink, label, sinks};
use crate::{Dataset, Error, Record, Result};
use serde::{Deserialize, Serialize};
use std::panic::Location;

/// A primitive number a dataset can summarise: every integer type and `f32`, `f64`.
pub trait Number: Record + Copy + PartialOrd {
    /// The sum of no values.
    const ZERO: Self;
    /// The value as an `f64` (rounded for integers beyond 2^53).
    fn to_f64(self) -> f64;
    /// `self + other`, or `None` when an integer sum overflows.
    fn checked_plus(self, other: Self) -> Option<Self>;
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl Number for $t {
            const ZERO: Self = 0;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn checked_plus(self, other: Self) -> Option<Self> {
                self.checked_add(other)
            }
        }
    )*};
}
integers!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

macro_rules! floats {
    ($($t:ty),*) => {$(
        impl Number for $t {
            const ZERO: Self = 0.0;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn checked_plus(self, other: Self) -> Option<Self> {
                Some(self + other)
            }
        }
    )*};
}
floats!(f32, f64);

/// What `stats()` returns: Spark's `StatCounter`. For an empty dataset `count` and `sum` are 0,
/// `min` is +∞, `max` is −∞ and the rest are NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Number of values.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Population variance (divided by `count`).
    pub variance: f64,
    /// Population standard deviation.
    pub stdev: f64,
    /// Sample variance (divided by `count - 1`; NaN for fewer than two values).
    pub sample_variance: f64,
    /// Sample standard deviation.
    pub sample_stdev: f64,
}

/// One partition's (or several merged partitions') summary.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub(crate) count: u64,
    pub(crate) mean: f64,
    /// Sum of squared deviations from the mean.
    pub(crate) m2: f64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Summary {
    /// Add one value (Welford's update).
    pub(crate) fn add(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.sum += x;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Merge another summary (Chan et al.'s parallel formula, as Spark's `StatCounter.merge`).
    pub(crate) fn merge(&mut self, other: &Summary) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (n1, n2) = (self.count as f64, other.count as f64);
        let n = n1 + n2;
        let delta = other.mean - self.mean;
        // Of two very different sizes, move the larger one's mean: less rounding.
        self.mean = if n2 * 10.0 < n1 {
            self.mean + delta * n2 / n
        } else if n1 * 10.0 < n2 {
            other.mean - delta * n1 / n
        } else {
            (self.mean * n1 + other.mean * n2) / n
        };
        self.m2 += other.m2 + delta * delta * n1 * n2 / n;
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    fn stats(&self) -> Stats {
        let n = self.count as f64;
        let (mean, variance) =
            if self.count == 0 { (f64::NAN, f64::NAN) } else { (self.mean, self.m2 / n) };
        let sample_variance = if self.count < 2 { f64::NAN } else { self.m2 / (n - 1.0) };
        Stats {
            count: self.count,
            mean,
            sum: self.sum,
            min: self.min,
            max: self.max,
            variance,
            stdev: variance.sqrt(),
            sample_variance,
            sample_stdev: sample_variance.sqrt(),
        }
    }
}

impl<T: Number> Dataset<T> {
    /// The sum of all values, in `T` (0 for an empty dataset). An integer sum that overflows `T`
    /// is an error, not a wrapped value.
    #[track_caller]
    pub fn sum(&self) -> Result<T> {
        let sink =
            exec::call(label("sum", Location::caller()), fn_ref_sink(sinks::sum::<T>), vec![]);
        let mut total = T::ZERO;
        for part in self.run_to_driver_decoded::<T>(sink)? {
            total = total.checked_plus(part).ok_or_else(|| {
                Error::Unsupported(format!("the sum overflows {}", std::any::type_name::<T>()))
            })?;
        }
        Ok(total)
    }

    /// The mean of all values (NaN for an empty dataset).
    #[track_caller]
    pub fn mean(&self) -> Result<f64> {
        Ok(self.summary(Location::caller())?.stats().mean)
    }

    /// Count, mean, sum, extremes and variances, in one pass over the data.
    #[track_caller]
    pub fn stats(&self) -> Result<Stats> {
        Ok(self.summary(Location::caller())?.stats())
    }

    fn summary(&self, at: &Location<'_>) -> Result<Summary> {
        let sink = exec::call(label("stats", at), fn_ref_sink(sinks::summary::<T>), vec![]);
        let mut all = Summary::default();
        for part in self.run_to_driver_decoded::<Summary>(sink)? {
            all.merge(&part);
        }
        Ok(all)
    }

    /// A histogram of `buckets` evenly spaced buckets between the smallest and the largest
    /// value: the `buckets + 1` bucket edges and each bucket's count. Every bucket is half-open
    /// `[a, b)` except the last, which also holds the largest value. When all values are equal
    /// the edges are `[x, x]` and the one bucket holds them all. Two passes over the data (the
    /// extremes, then the counts). Fails for an empty dataset, for values that are NaN or
    /// infinite, and for 0 buckets.
    #[track_caller]
    pub fn histogram(&self, buckets: u32) -> Result<(Vec<f64>, Vec<u64>)> {
        let at = Location::caller();
        if buckets == 0 {
            return Err(Error::Unsupported("a histogram needs at least one bucket".into()));
        }
        let s = self.summary(at)?;
        if s.count == 0 || !s.min.is_finite() || !s.max.is_finite() || s.mean.is_nan() {
            return Err(Error::Unsupported(
                "histogram of an empty dataset, or of one holding NaN or an infinity".into(),
            ));
        }
        let (edges, count) = if s.min == s.max {
            (vec![s.min, s.max], 1)
        } else {
            let span = s.max - s.min;
            let n = f64::from(buckets);
            let mut edges: Vec<f64> =
                (0..buckets).map(|i| s.min + f64::from(i) * span / n).collect();
            edges.push(s.max);
            (edges, buckets)
        };
        let arg = encode_value(&(s.min, s.max, count));
        let func = fn_ref_sink(sinks::histogram::<T>);
        let sink = exec::call(label("histogram", at), func, arg);
        let mut counts = vec![0u64; count as usize];
        for part in self.run_to_driver_decoded::<Vec<u64>>(sink)? {
            if part.len() != counts.len() {
                return Err(Error::Codec("a task returned a histogram of another size".into()));
            }
            counts.iter_mut().zip(part).for_each(|(c, p)| *c += p);
        }
        Ok((edges, counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(values: &[f64]) -> Summary {
        let mut s = Summary::default();
        values.iter().for_each(|&x| s.add(x));
        s
    }

    #[test]
    fn merged_summaries_agree_with_one_pass_over_everything() {
        let values: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1013) as f64 / 3.0).collect();
        let whole = summary(&values).stats();
        for cut in [0, 1, 10, 500, 999, 1000] {
            let mut left = summary(&values[..cut]);
            left.merge(&summary(&values[cut..]));
            let merged = left.stats();
            assert_eq!(merged.count, 1000);
            for (a, b) in [
                (merged.mean, whole.mean),
                (merged.variance, whole.variance),
                (merged.sample_stdev, whole.sample_stdev),
                (merged.sum, whole.sum),
            ] {
                assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "cut {cut}: {a} vs {b}");
            }
            assert_eq!((merged.min, merged.max), (whole.min, whole.max));
        }
        // Against the textbook two-pass definition.
        let mean = values.iter().sum::<f64>() / 1000.0;
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 1000.0;
        assert!((whole.variance - var).abs() < 1e-9 * var);
    }

    #[test]
    fn an_empty_summary_has_sparks_values() {
        let s = Summary::default().stats();
        assert_eq!((s.count, s.sum, s.min, s.max), (0, 0.0, f64::INFINITY, f64::NEG_INFINITY));
        assert!(s.mean.is_nan() && s.variance.is_nan() && s.sample_variance.is_nan());
        assert!(summary(&[4.0]).stats().sample_variance.is_nan());
    }
}
