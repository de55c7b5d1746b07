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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataDir;
    use weft_abi::task::PartTarget;

    #[test]
    fn an_aborted_output_leaves_nothing_while_a_straggler_still_writes_parts() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let storage: Arc<dyn Storage> = Arc::new(DataDir::new(dir.path()).unwrap());
            let staged = StagedDir::create(storage.clone(), "out").unwrap();
            let first =
                PartTarget { staging: staged.staging().to_string(), partition: 0, attempt: 0 };
            // A task that goes on after its action failed: part after part, until it cannot
            // (or for half a second at most).
            let straggler = std::thread::spawn({
                let storage = storage.clone();
                let start = std::time::Instant::now();
                move || {
                    for attempt in 0.. {
                        if start.elapsed() > std::time::Duration::from_millis(500) {
                            return;
                        }
                        let target = PartTarget { attempt, ..first.clone() };
                        let Ok(mut part) = storage.part_writer(&target) else { return };
                        if part.write(b"x\n").is_err() || part.commit().is_err() {
                            return;
                        }
                    }
                }
            });
            std::thread::sleep(std::time::Duration::from_millis(2));
            drop(staged);
            straggler.join().unwrap();
            let left: Vec<_> =
                std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert!(left.is_empty(), "round {round}: {left:?} left behind");
        }
    }
}
