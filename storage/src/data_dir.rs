//! The job's data directory: the only place the host reads inputs from and writes outputs to on
//! a job's behalf.
//!
//! Every path a job names is resolved against the data directory and then *canonicalised*, so
//! `..` components, absolute paths and symbolic links are all judged by where they really lead:
//! anything outside the directory is refused with [`StorageError::Outside`].

use crate::{InputFile, PartWriter, RangeRead, StagedOutput, Storage, StorageError};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use weft_abi::task::PartTarget;

/// A canonicalised data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Use `root` (which must exist and be a directory).
    pub fn new(root: impl AsRef<Path>) -> Result<DataDir, StorageError> {
        let given = root.as_ref();
        let err = |reason: String| StorageError::Root { path: given.display().to_string(), reason };
        let root = given.canonicalize().map_err(|e| err(e.to_string()))?;
        if !root.is_dir() {
            return Err(err("not a directory".into()));
        }
        Ok(DataDir { root })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn outside(&self, path: &str) -> StorageError {
        StorageError::Outside { path: path.to_string(), root: self.root.display().to_string() }
    }

    /// Canonicalise `candidate` and check it is inside the root.
    fn confine(&self, path: &str, candidate: &Path) -> Result<PathBuf, StorageError> {
        let real = candidate.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound {
                path: path.to_string(),
                root: self.root.display().to_string(),
            },
            _ => StorageError::Io { path: path.to_string(), reason: e.to_string() },
        })?;
        if real.starts_with(&self.root) { Ok(real) } else { Err(self.outside(path)) }
    }

    fn input_file(&self, path: &str, real: PathBuf) -> Result<InputFile, StorageError> {
        let meta = std::fs::metadata(&real).map_err(|e| StorageError::io(path, e))?;
        let relative = real.strip_prefix(&self.root).unwrap_or(&real).display().to_string();
        Ok(InputFile { path: relative, len: meta.len() })
    }

    /// An existing path relative to the root (as another process of the cluster named it),
    /// confined like every other path.
    fn existing(&self, path: &str) -> Result<PathBuf, StorageError> {
        self.confine(path, &self.root.join(path))
    }

    /// A path relative to the root for a file about to be written (its parent must exist and be
    /// inside the root).
    fn new_file(&self, path: &str) -> Result<PathBuf, StorageError> {
        let joined = self.root.join(path);
        let name = joined.file_name().ok_or_else(|| self.outside(path))?.to_owned();
        let parent = joined.parent().ok_or_else(|| self.outside(path))?;
        Ok(self.confine(path, parent)?.join(name))
    }

    fn relative(&self, real: &Path) -> String {
        real.strip_prefix(&self.root).unwrap_or(real).display().to_string()
    }

    /// The files a source path names, sorted by path (see [`Storage::list`]).
    fn resolve_inputs(&self, path: &str) -> Result<Vec<InputFile>, StorageError> {
        let joined = self.root.join(path);
        if path.contains(['*', '?', '[']) {
            let pattern = joined.to_string_lossy().into_owned();
            let matches = glob::glob(&pattern).map_err(|e| StorageError::Io {
                path: path.to_string(),
                reason: format!("bad glob: {e}"),
            })?;
            let mut files = Vec::new();
            for m in matches {
                let m = m.map_err(|e| StorageError::Io {
                    path: path.to_string(),
                    reason: e.to_string(),
                })?;
                let real = self.confine(path, &m)?;
                if real.is_file() {
                    files.push(self.input_file(path, real)?);
                }
            }
            if files.is_empty() {
                return Err(StorageError::NotFound {
                    path: path.to_string(),
                    root: self.root.display().to_string(),
                });
            }
            files.sort_by(|a, b| a.path.cmp(&b.path));
            return Ok(files);
        }
        let real = self.confine(path, &joined)?;
        if real.is_file() {
            return Ok(vec![self.input_file(path, real)?]);
        }
        let entries = std::fs::read_dir(&real)
            .map_err(|e| StorageError::Io { path: path.to_string(), reason: e.to_string() })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| StorageError::Io { path: path.to_string(), reason: e.to_string() })?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let real = self.confine(path, &entry.path())?;
            if real.is_file() {
                files.push(self.input_file(path, real)?);
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        if files.is_empty() {
            return Err(StorageError::NotFound {
                path: path.to_string(),
                root: self.root.display().to_string(),
            });
        }
        Ok(files)
    }

    /// Where an output directory named `path` would go: checked to be inside the root and not to
    /// exist yet. Its parent directories are created.
    fn output_dir(&self, path: &str) -> Result<PathBuf, StorageError> {
        let joined = self.root.join(path);
        let name = match joined.components().next_back() {
            Some(Component::Normal(name)) => name.to_owned(),
            _ => return Err(self.outside(path)),
        };
        let parent = joined.parent().ok_or_else(|| self.outside(path))?;
        // Judge the parent by the deepest part of it that exists, then create the rest.
        let mut existing = parent.to_path_buf();
        while !existing.exists() {
            if !existing.pop() {
                return Err(self.outside(path));
            }
        }
        self.confine(path, &existing)?;
        if parent.components().any(|c| c == Component::ParentDir) {
            // `..` below the deepest existing part would be resolved only after creation.
            let rest = parent.strip_prefix(&existing).unwrap_or(parent);
            if rest.components().any(|c| c == Component::ParentDir) {
                return Err(self.outside(path));
            }
        }
        std::fs::create_dir_all(parent)
            .map_err(|e| StorageError::Io { path: path.to_string(), reason: e.to_string() })?;
        let real_parent = self.confine(path, parent)?;
        let target = real_parent.join(name);
        if target.symlink_metadata().is_ok() {
            return Err(StorageError::OutputExists(path.to_string()));
        }
        Ok(target)
    }
}

/// Staging directories of this process are told apart by this sequence and the process id.
static STAGING_SEQ: AtomicU64 = AtomicU64::new(0);

impl Storage for DataDir {
    fn list(&self, path: &str) -> Result<Vec<InputFile>, StorageError> {
        self.resolve_inputs(path)
    }

    fn open(&self, path: &str) -> Result<Box<dyn RangeRead>, StorageError> {
        let real = self.existing(path)?;
        let file = File::open(&real).map_err(|e| StorageError::io(path, e))?;
        Ok(Box::new(LocalFile(file)))
    }

    fn stage_output(&self, path: &str) -> Result<StagedOutput, StorageError> {
        let target = self.output_dir(path)?;
        let name = target.file_name().expect("output_dir returns a named path").to_string_lossy();
        let seq = STAGING_SEQ.fetch_add(1, Ordering::Relaxed);
        let staging =
            target.with_file_name(format!(".{name}.weft-staging-{}-{seq}", std::process::id()));
        std::fs::create_dir(&staging).map_err(|e| StorageError::io(path, e))?;
        Ok(StagedOutput { path: path.to_string(), staging: self.relative(&staging) })
    }

    fn part_writer(&self, target: &PartTarget) -> Result<Box<dyn PartWriter>, StorageError> {
        let (p, a) = (target.partition, target.attempt);
        let tmp = self.new_file(&format!("{}/.part-{p:05}.attempt-{a}", target.staging))?;
        let part = self.new_file(&format!("{}/part-{p:05}", target.staging))?;
        let file = File::create(&tmp).map_err(|e| {
            StorageError::io(&tmp.display().to_string(), format!("cannot create: {e}"))
        })?;
        Ok(Box::new(LocalPart {
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp,
            part,
            bytes: 0,
        }))
    }

    fn commit_output(&self, output: &StagedOutput) -> Result<(), StorageError> {
        let staging = self.existing(&output.staging)?;
        let target = self.output_dir(&output.path)?;
        std::fs::rename(&staging, &target).map_err(|e| {
            StorageError::io(&output.path, format!("cannot move the output into place: {e}"))
        })
    }

    fn abort_output(&self, output: &StagedOutput) {
        if let Ok(staging) = self.existing(&output.staging) {
            // Moved out of its name first: a task still writing a part (an action that failed
            // does not wait for its tasks) then cannot add a file while the directory is being
            // removed, which would leave it behind, not empty.
            let aborted = staging.with_extension("aborted");
            let doomed = match std::fs::rename(&staging, &aborted) {
                Ok(()) => aborted,
                Err(_) => staging,
            };
            let _ = std::fs::remove_dir_all(doomed);
        }
    }
}

/// A local file read with `pread`, so that threads can share it.
struct LocalFile(File);

impl RangeRead for LocalFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
}

/// A part written to a temporary name in the staging directory and renamed when committed.
struct LocalPart {
    writer: Option<BufWriter<File>>,
    tmp: PathBuf,
    part: PathBuf,
    bytes: u64,
}

impl LocalPart {
    fn error(&self, e: impl std::fmt::Display) -> StorageError {
        StorageError::io(&self.part.display().to_string(), format!("cannot write: {e}"))
    }
}

impl PartWriter for LocalPart {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let writer = self.writer.as_mut().expect("open until committed");
        let written = writer.write_all(bytes);
        written.map_err(|e| self.error(e))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<u64, StorageError> {
        let writer = self.writer.take().expect("open until committed");
        let file = writer.into_inner().map_err(|e| self.error(e.error()))?;
        file.sync_all().map_err(|e| self.error(e))?;
        std::fs::rename(&self.tmp, &self.part).map_err(|e| self.error(e))?;
        Ok(self.bytes)
    }
}

impl Drop for LocalPart {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, DataDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("data/b.txt"), "bb").unwrap();
        std::fs::write(dir.path().join("data/_SUCCESS"), "").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "s").unwrap();
        let data = DataDir::new(dir.path().join("data")).unwrap();
        (dir, data)
    }

    #[test]
    fn resolves_files_directories_and_globs() {
        let (_tmp, data) = setup();
        let names = |v: Vec<InputFile>| v.into_iter().map(|f| f.path).collect::<Vec<_>>();
        assert_eq!(names(data.resolve_inputs("a.txt").unwrap()), ["a.txt"]);
        assert_eq!(names(data.resolve_inputs(".").unwrap()), ["a.txt", "b.txt"]);
        assert_eq!(names(data.resolve_inputs("*.txt").unwrap()), ["a.txt", "b.txt"]);
        assert_eq!(data.resolve_inputs("b.txt").unwrap()[0].len, 2);
    }

    #[test]
    fn refuses_paths_that_escape() {
        let (tmp, data) = setup();
        let outside = |r: Result<Vec<InputFile>, StorageError>| {
            matches!(r, Err(StorageError::Outside { .. }))
        };
        assert!(outside(data.resolve_inputs("../secret.txt")));
        assert!(outside(data.resolve_inputs(tmp.path().join("secret.txt").to_str().unwrap())));
        assert!(outside(data.resolve_inputs("/etc/passwd")));
        assert!(outside(data.resolve_inputs("../*.txt")));
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), tmp.path().join("data/link.txt"))
            .unwrap();
        assert!(outside(data.resolve_inputs("link.txt")));
        assert!(matches!(data.output_dir("../out"), Err(StorageError::Outside { .. })));
        assert!(matches!(data.output_dir("new/../../out"), Err(StorageError::Outside { .. })));
        assert!(!tmp.path().join("out").exists());
    }

    #[test]
    fn missing_inputs_and_existing_outputs_are_named() {
        let (_tmp, data) = setup();
        assert!(matches!(data.resolve_inputs("nope.txt"), Err(StorageError::NotFound { .. })));
        assert!(matches!(data.resolve_inputs("*.csv"), Err(StorageError::NotFound { .. })));
        assert_eq!(data.output_dir("a.txt"), Err(StorageError::OutputExists("a.txt".into())));
        let out = data.output_dir("results/run1").unwrap();
        assert!(out.ends_with("results/run1") && !out.exists());
    }
}
