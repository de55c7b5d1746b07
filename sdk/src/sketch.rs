//! Mergeable sketches of large datasets: [`HyperLogLog`] for counting distinct items.
//!
//! A sketch is a [`Record`](crate::Record), so it crosses shuffles: build one per key and
//! partition with `aggregate_by_key`, merge them across partitions, estimate at the end — in
//! memory proportional to the sketch, never to the number of distinct items.

use crate::exec::hash_of;
use serde::{Deserialize, Serialize};
use std::hash::Hash;

/// A HyperLogLog sketch (Flajolet, Fusy, Gandouet and Meunier, 2007) of the distinct items
/// added to it: `2^precision` one-byte registers, and a standard error of about
/// `1.04 / sqrt(2^precision)` — 0.81% at precision 14 (16 KiB). Sketches of the same precision
/// merge into the sketch of the union of their items.
///
/// ```
/// use weft::sketch::HyperLogLog;
///
/// let mut a = HyperLogLog::new(12);
/// let mut b = HyperLogLog::new(12);
/// (0..5000u32).for_each(|i| a.add(&i));
/// (2500..7500u32).for_each(|i| b.add(&i));
/// a.merge(&b);
/// let estimate = a.estimate() as f64;
/// assert!((estimate - 7500.0).abs() < 7500.0 * 0.05);
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HyperLogLog {
    precision: u8,
    #[serde(with = "serde_bytes")]
    registers: Vec<u8>,
}

/// The smallest and largest precision a sketch may have.
pub const PRECISIONS: std::ops::RangeInclusive<u8> = 4..=18;

impl HyperLogLog {
    /// An empty sketch of `2^precision` registers; `precision` must be within [`PRECISIONS`]
    /// (4 to 18).
    pub fn new(precision: u8) -> HyperLogLog {
        assert!(
            PRECISIONS.contains(&precision),
            "a HyperLogLog precision must be between 4 and 18, not {precision}"
        );
        HyperLogLog { precision, registers: vec![0; 1 << precision] }
    }

    /// Its precision.
    pub fn precision(&self) -> u8 {
        self.precision
    }

    /// Add an item (adding it again changes nothing).
    pub fn add<T: Hash + ?Sized>(&mut self, item: &T) {
        let h = mix(hash_of(item));
        let p = u32::from(self.precision);
        let index = (h >> (64 - p)) as usize;
        // The rank of the first 1 bit after the index bits; a guard bit bounds it.
        let rest = (h << p) | (1 << (p - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        let register = &mut self.registers[index];
        *register = (*register).max(rank);
    }

    /// Merge `other` into this sketch: it then stands for the union of both sketches' items.
    /// Both must have the same precision.
    pub fn merge(&mut self, other: &HyperLogLog) {
        assert_eq!(
            self.precision, other.precision,
            "HyperLogLog sketches of different precisions cannot be merged"
        );
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// The estimated number of distinct items added: the harmonic-mean estimate, with linear
    /// counting while it is small (the paper's small-range correction; a 64-bit hash needs no
    /// large-range one).
    pub fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let alpha = match self.registers.len() {
            16 => 0.673,
            32 => 0.697,
            64 => 0.709,
            _ => 0.7213 / (1.0 + 1.079 / m),
        };
        let sum: f64 = self.registers.iter().map(|&r| (-f64::from(r)).exp2()).sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
        estimate.round() as u64
    }
}

/// Spread a 64-bit hash's entropy over all its bits (SplitMix64's finaliser): the sketch reads
/// its top bits as the register index and the rest as a geometric variable.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_within_a_few_standard_errors() {
        for (precision, n) in [(14u8, 100_000u64), (10, 50_000), (14, 200), (12, 1)] {
            let mut s = HyperLogLog::new(precision);
            for i in 0..n {
                s.add(&format!("client-{i}"));
                s.add(&format!("client-{i}"));
            }
            let error = 1.04 / f64::from(1u32 << precision).sqrt();
            let got = s.estimate() as f64;
            assert!(
                (got - n as f64).abs() <= 4.0 * error * n as f64 + 1.0,
                "p{precision}: {got} for {n}"
            );
        }
        assert_eq!(HyperLogLog::new(8).estimate(), 0);
    }

    #[test]
    fn merging_gives_the_sketch_of_the_union_and_survives_encoding() {
        let (mut left, mut right, mut whole) =
            (HyperLogLog::new(11), HyperLogLog::new(11), HyperLogLog::new(11));
        for i in 0..30_000u64 {
            if i % 3 == 0 { &mut left } else { &mut right }.add(&i);
            whole.add(&i);
        }
        left.merge(&right);
        assert_eq!(left, whole);
        let bytes = rmp_serde::to_vec(&whole).unwrap();
        assert!(bytes.len() < 2100, "registers travel as bytes: {}", bytes.len());
        assert_eq!(rmp_serde::from_slice::<HyperLogLog>(&bytes).unwrap(), whole);
    }

    #[test]
    #[should_panic(expected = "different precisions")]
    fn sketches_of_different_precisions_do_not_merge() {
        HyperLogLog::new(10).merge(&HyperLogLog::new(11));
    }
}
