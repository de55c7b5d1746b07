//! What the benchmark's jobs share: the cheap function of the UDF benchmark, compiled into the
//! job for the inlined side and into `mix_udf` for the UDF side.

/// SplitMix64's finaliser: a few multiplies and shifts, so that the benchmark measures the cost
/// of calling a UDF rather than the UDF's own work.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
