//! Text output that appears only when complete.
//!
//! `save_as_text_file("out")` writes into a hidden staging directory next to `out`; each task
//! writes its part under a temporary name and renames it when done (so a retried task never
//! leaves a torn part), and when every part is there the staging directory is renamed to `out`
//! in one step. Readers therefore see either no `out` at all or all of it. A failed job removes
//! its staging directory.

use crate::data_dir::{DataDir, DataDirError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// An output directory being written.
#[derive(Debug)]
pub struct TextOutput {
    target: PathBuf,
    staging: PathBuf,
    committed: bool,
}

static STAGING_SEQ: AtomicU64 = AtomicU64::new(0);

impl TextOutput {
    /// Start writing the directory `path` of `data` (which must not exist yet).
    pub fn create(data: &DataDir, path: &str) -> Result<TextOutput, DataDirError> {
        let target = data.output_dir(path)?;
        let name = target.file_name().expect("output_dir returns a named path").to_string_lossy();
        let seq = STAGING_SEQ.fetch_add(1, Ordering::Relaxed);
        let staging =
            target.with_file_name(format!(".{name}.weft-staging-{}-{seq}", std::process::id()));
        std::fs::create_dir(&staging)
            .map_err(|e| DataDirError::Io { path: path.to_string(), reason: e.to_string() })?;
        Ok(TextOutput { target, staging, committed: false })
    }

    /// Temporary and final path of part `partition` written by attempt `attempt`.
    pub fn part_paths(&self, partition: u32, attempt: u32) -> (PathBuf, PathBuf) {
        let part = self.staging.join(format!("part-{partition:05}"));
        let tmp = self.staging.join(format!(".part-{partition:05}.attempt-{attempt}"));
        (tmp, part)
    }

    /// Make the directory visible under its name.
    pub fn commit(mut self) -> Result<PathBuf, String> {
        std::fs::rename(&self.staging, &self.target)
            .map_err(|e| format!("cannot move the output into {}: {e}", self.target.display()))?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for TextOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}
