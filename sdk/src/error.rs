//! The SDK's error type.

use std::fmt;

/// Result type of fallible SDK calls (actions, mostly).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an SDK call failed.
///
/// `Debug` prints the same text as `Display`, so that `fn main() -> weft::Result<()>` reports a
/// failure readably.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The host ran the action and it failed: the message names the stage, task and cause.
    Job(String),
    /// A batch of records could not be encoded or decoded.
    Codec(String),
    /// Bad input data (a malformed CSV row, invalid UTF-8 in a text file…).
    Input(String),
    /// The operation cannot give an answer for these arguments or this data (a histogram of an
    /// empty dataset, a sum that overflows, a sampling fraction out of range).
    Unsupported(String),
    /// A UDF could not be bound: no such module or function, or types that do not match its
    /// declared signature (the message names both).
    Udf(String),
    /// The program was started natively rather than inside a Weft sandbox.
    NotInSandbox,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Job(m) => write!(f, "job failed: {m}"),
            Error::Codec(m) => write!(f, "record encoding failed: {m}"),
            Error::Input(m) => write!(f, "bad input: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Udf(m) => write!(f, "cannot use the UDF: {m}"),
            Error::NotInSandbox => f.write_str(
                "this is a Weft job: build it with `cargo build --release --target wasm32-wasip1` \
                 and run the .wasm with `weft run`",
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<rmp_serde::encode::Error> for Error {
    fn from(e: rmp_serde::encode::Error) -> Self {
        Error::Codec(e.to_string())
    }
}

impl From<rmp_serde::decode::Error> for Error {
    fn from(e: rmp_serde::decode::Error) -> Self {
        Error::Codec(e.to_string())
    }
}
