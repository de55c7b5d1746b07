//! The Weft side of two `weft-bench compare` workloads, as guest binaries (`src/bin/`):
//!
//! - `flights_join`: every flight joined with its airline (`join`, both sides shuffled), then the
//!   average departure delay per airline;
//! - `sort_records`: `sort_by_key` of `key,value` records into a directory of sorted parts.
//!
//! They are written the way a user would write them with the SDK; their PySpark twins are in
//! `bench/pyspark/`.
