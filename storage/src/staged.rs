//! An output directory that appears only when complete.
//!
//! `save_as_text_file("out")` reserves `out` with [`Storage::stage_output`]: parts are written
//! into a hidden staging area, each under a temporary name renamed when its task succeeds (so a
//! retried task never leaves a torn part), and when every part is there the staging area becomes
//! `out` in one step. Readers therefore see either no `out` at all or all of it. [`StagedDir`]
//! holds the reservation for the action that writes it: dropped without
//! [`commit`](StagedDir::commit) — the action failed, the job was cancelled — it removes the
//! staging area.

use crate::{StagedOutput, Storage, StorageError};
use std::sync::Arc;

/// An output directory being written by one action.
pub struct StagedDir {
    storage: Arc<dyn Storage>,
    output: StagedOutput,
    committed: bool,
}

impl StagedDir {
    /// Reserve the directory `path` of `storage` (which must not exist yet).
    pub fn create(storage: Arc<dyn Storage>, path: &str) -> Result<StagedDir, StorageError> {
        let output = storage.stage_output(path)?;
        Ok(StagedDir { storage, output, committed: false })
    }

    /// Where parts are written, relative to the storage root.
    pub fn staging(&self) -> &str {
        &self.output.staging
    }

    /// Make the directory visible under its name.
    pub fn commit(mut self) -> Result<(), StorageError> {
        self.storage.commit_output(&self.output)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            self.storage.abort_output(&self.output);
        }
    }
}
