//! # weft-storage: where a job's data lives
//!
//! The host reads and writes every byte of a job's data on its behalf; guests only ever see
//! batches. This crate is that reading and writing, behind one interface, [`Storage`]: list the
//! files a path names, read any range of one, and write an output directory as parts that are
//! staged and then committed in one step, so that nobody ever sees half an output. The data
//! directory ([`DataDir`]) is the implementation today; object storage slots in behind the same
//! trait.
//!
//! On top of it:
//! - [`input`]: input files cut into splits (text at byte offsets, CSV at exact record boundaries
//!   found by one scan) and read as line-aligned chunks;
//! - [`staged`]: an output directory being written, removed again unless committed;
//! - [`shuffle_store`]: where map outputs wait for their reducers, in memory up to a bound and on
//!   local disk past it (this is scratch space of the machine, not the job's storage).

mod aligned_read;
mod csv_layout;
mod data_dir;
pub mod input;
pub mod shuffle_store;
pub mod staged;

pub use data_dir::DataDir;
pub use weft_abi::task::{FileFormat, FileSplit, PartTarget};

use thiserror::Error;

/// Why storage refused or failed an operation. Messages name the path as the job wrote it.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum StorageError {
    /// The storage root itself is unusable.
    #[error("data directory {path}: {reason}")]
    Root {
        /// The root given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The path leads outside the storage root.
    #[error("path `{path}` is outside the data directory {root}")]
    Outside {
        /// The path as the job wrote it.
        path: String,
        /// The root.
        root: String,
    },
    /// Nothing there.
    #[error("input `{path}` not found in the data directory {root}")]
    NotFound {
        /// The path as the job wrote it.
        path: String,
        /// The root.
        root: String,
    },
    /// An output directory that already exists.
    #[error("output directory `{0}` already exists; choose another or remove it first")]
    OutputExists(String),
    /// Any other failure to read or write.
    #[error("`{path}`: {reason}")]
    Io {
        /// The path as the job wrote it.
        path: String,
        /// The error.
        reason: String,
    },
}

impl StorageError {
    /// An I/O failure on `path`.
    pub fn io(path: &str, error: impl std::fmt::Display) -> StorageError {
        StorageError::Io { path: path.to_string(), reason: error.to_string() }
    }
}

/// One input file, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Its path relative to the storage root: how splits name it, and how messages do.
    pub path: String,
    /// Size in bytes when it was listed (splits are planned for this length).
    pub len: u64,
}

/// A file opened for reading at any offset.
pub trait RangeRead: Send + Sync {
    /// Read up to `buf.len()` bytes at `offset`; 0 at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;

    /// Fill `buf` from `offset`, or fail with `UnexpectedEof` where the file ends first.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// An output directory reserved by [`Storage::stage_output`]: parts are written under
/// `staging`, which becomes `path` when committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedOutput {
    /// The output directory as the job named it.
    pub path: String,
    /// Where its parts are written meanwhile, relative to the storage root.
    pub staging: String,
}

/// One part of a staged output being written. Dropping it without [`commit`](Self::commit)
/// removes what was written.
pub trait PartWriter: Send {
    /// Append bytes.
    fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError>;
    /// Make the part visible in its staging directory under its final name; returns its size.
    fn commit(self: Box<Self>) -> Result<u64, StorageError>;
}

/// Where a job's inputs are read and its outputs written. Paths are as the job wrote them,
/// relative to the storage root; nothing outside the root can be reached.
pub trait Storage: Send + Sync {
    /// The files a source path names: a file, every visible file of a directory (names starting
    /// with `.` or `_` are skipped, as Spark does), or every file matching a glob; sorted by path.
    fn list(&self, path: &str) -> Result<Vec<InputFile>, StorageError>;

    /// Open a file for ranged reads.
    fn open(&self, path: &str) -> Result<Box<dyn RangeRead>, StorageError>;

    /// Reserve the output directory `path`, which must not exist yet, and create its staging
    /// area. Nothing appears under `path` before [`commit_output`](Self::commit_output).
    fn stage_output(&self, path: &str) -> Result<StagedOutput, StorageError>;

    /// A writer for one part of a staged output (each attempt at a part writes its own, so that
    /// a retried task never tears another's).
    fn part_writer(&self, target: &PartTarget) -> Result<Box<dyn PartWriter>, StorageError>;

    /// Make a staged output visible under its name, all at once.
    fn commit_output(&self, output: &StagedOutput) -> Result<(), StorageError>;

    /// Remove a staged output that will not be committed (best effort).
    fn abort_output(&self, output: &StagedOutput);
}
