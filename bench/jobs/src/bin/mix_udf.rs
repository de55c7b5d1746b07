//! The UDF module of the UDF benchmark: `mix` for any job to call by name.

weft::udf! {
    /// SplitMix64's finaliser of a number.
    fn mix(x: u64) -> u64 {
        bench_jobs::mix(x)
    }
}

/// A UDF module needs no `main`; this one is an ordinary binary crate.
fn main() {}
