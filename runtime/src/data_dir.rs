//! The job's data directory: the only place the host reads inputs from and writes outputs to on
//! a job's behalf.
//!
//! Every path a job names is resolved against the data directory and then *canonicalised*, so
//! `..` components, absolute paths and symbolic links are all judged by where they really lead:
//! anything outside the directory is refused with [`DataDirError::Outside`].

use std::path::{Component, Path, PathBuf};
use thiserror::Error;

/// Why a path could not be used.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DataDirError {
    /// The data directory itself is unusable.
    #[error("data directory {path}: {reason}")]
    Root {
        /// The directory given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The path leads outside the data directory.
    #[error("path `{path}` is outside the data directory {root}")]
    Outside {
        /// The path as the job wrote it.
        path: String,
        /// The data directory.
        root: String,
    },
    /// Nothing there.
    #[error("input `{path}` not found in the data directory {root}")]
    NotFound {
        /// The path as the job wrote it.
        path: String,
        /// The data directory.
        root: String,
    },
    /// An output directory that already exists.
    #[error("output directory `{0}` already exists; choose another or remove it first")]
    OutputExists(String),
    /// Any other file-system failure.
    #[error("`{path}`: {reason}")]
    Io {
        /// The path as the job wrote it.
        path: String,
        /// The error.
        reason: String,
    },
}

/// One input file.
#[derive(Debug, Clone, PartialEq)]
pub struct InputFile {
    /// Canonical path on this machine.
    pub path: PathBuf,
    /// Path relative to the data directory, for messages.
    pub display: String,
    /// Size in bytes.
    pub len: u64,
}

/// A canonicalised data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Use `root` (which must exist and be a directory).
    pub fn new(root: impl AsRef<Path>) -> Result<DataDir, DataDirError> {
        let given = root.as_ref();
        let err = |reason: String| DataDirError::Root { path: given.display().to_string(), reason };
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

    fn outside(&self, path: &str) -> DataDirError {
        DataDirError::Outside { path: path.to_string(), root: self.root.display().to_string() }
    }

    /// Canonicalise `candidate` and check it is inside the root.
    fn confine(&self, path: &str, candidate: &Path) -> Result<PathBuf, DataDirError> {
        let real = candidate.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataDirError::NotFound {
                path: path.to_string(),
                root: self.root.display().to_string(),
            },
            _ => DataDirError::Io { path: path.to_string(), reason: e.to_string() },
        })?;
        if real.starts_with(&self.root) { Ok(real) } else { Err(self.outside(path)) }
    }

    fn input_file(&self, path: &str, real: PathBuf) -> Result<InputFile, DataDirError> {
        let meta = std::fs::metadata(&real)
            .map_err(|e| DataDirError::Io { path: path.to_string(), reason: e.to_string() })?;
        let display = real.strip_prefix(&self.root).unwrap_or(&real).display().to_string();
        Ok(InputFile { path: real, display, len: meta.len() })
    }

    /// One existing file or directory, by a path relative to the root (as another process of
    /// the cluster named it), confined like every other path.
    pub fn existing(&self, path: &str) -> Result<PathBuf, DataDirError> {
        self.confine(path, &self.root.join(path))
    }

    /// A path relative to the root for a file about to be written (its parent must exist and be
    /// inside the root).
    pub fn new_file(&self, path: &str) -> Result<PathBuf, DataDirError> {
        let joined = self.root.join(path);
        let name = joined.file_name().ok_or_else(|| self.outside(path))?.to_owned();
        let parent = joined.parent().ok_or_else(|| self.outside(path))?;
        Ok(self.confine(path, parent)?.join(name))
    }

    /// The files a source path names: a file, every visible file of a directory (names starting
    /// with `.` or `_` are skipped, as Spark does), or every file matching a glob; sorted by path.
    pub fn resolve_inputs(&self, path: &str) -> Result<Vec<InputFile>, DataDirError> {
        let joined = self.root.join(path);
        if path.contains(['*', '?', '[']) {
            let pattern = joined.to_string_lossy().into_owned();
            let matches = glob::glob(&pattern).map_err(|e| DataDirError::Io {
                path: path.to_string(),
                reason: format!("bad glob: {e}"),
            })?;
            let mut files = Vec::new();
            for m in matches {
                let m = m.map_err(|e| DataDirError::Io {
                    path: path.to_string(),
                    reason: e.to_string(),
                })?;
                let real = self.confine(path, &m)?;
                if real.is_file() {
                    files.push(self.input_file(path, real)?);
                }
            }
            if files.is_empty() {
                return Err(DataDirError::NotFound {
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
            .map_err(|e| DataDirError::Io { path: path.to_string(), reason: e.to_string() })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| DataDirError::Io { path: path.to_string(), reason: e.to_string() })?;
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
            return Err(DataDirError::NotFound {
                path: path.to_string(),
                root: self.root.display().to_string(),
            });
        }
        Ok(files)
    }

    /// Where an output directory named `path` would go: checked to be inside the root and not to
    /// exist yet. Its parent directories are created.
    pub fn output_dir(&self, path: &str) -> Result<PathBuf, DataDirError> {
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
            .map_err(|e| DataDirError::Io { path: path.to_string(), reason: e.to_string() })?;
        let real_parent = self.confine(path, parent)?;
        let target = real_parent.join(name);
        if target.symlink_metadata().is_ok() {
            return Err(DataDirError::OutputExists(path.to_string()));
        }
        Ok(target)
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
        let names = |v: Vec<InputFile>| v.into_iter().map(|f| f.display).collect::<Vec<_>>();
        assert_eq!(names(data.resolve_inputs("a.txt").unwrap()), ["a.txt"]);
        assert_eq!(names(data.resolve_inputs(".").unwrap()), ["a.txt", "b.txt"]);
        assert_eq!(names(data.resolve_inputs("*.txt").unwrap()), ["a.txt", "b.txt"]);
        assert_eq!(data.resolve_inputs("b.txt").unwrap()[0].len, 2);
    }

    #[test]
    fn refuses_paths_that_escape() {
        let (tmp, data) = setup();
        let outside = |r: Result<Vec<InputFile>, DataDirError>| {
            matches!(r, Err(DataDirError::Outside { .. }))
        };
        assert!(outside(data.resolve_inputs("../secret.txt")));
        assert!(outside(data.resolve_inputs(tmp.path().join("secret.txt").to_str().unwrap())));
        assert!(outside(data.resolve_inputs("/etc/passwd")));
        assert!(outside(data.resolve_inputs("../*.txt")));
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), tmp.path().join("data/link.txt"))
            .unwrap();
        assert!(outside(data.resolve_inputs("link.txt")));
        assert!(matches!(data.output_dir("../out"), Err(DataDirError::Outside { .. })));
        assert!(matches!(data.output_dir("new/../../out"), Err(DataDirError::Outside { .. })));
        assert!(!tmp.path().join("out").exists());
    }

    #[test]
    fn missing_inputs_and_existing_outputs_are_named() {
        let (_tmp, data) = setup();
        assert!(matches!(data.resolve_inputs("nope.txt"), Err(DataDirError::NotFound { .. })));
        assert!(matches!(data.resolve_inputs("*.csv"), Err(DataDirError::NotFound { .. })));
        assert_eq!(data.output_dir("a.txt"), Err(DataDirError::OutputExists("a.txt".into())));
        let out = data.output_dir("results/run1").unwrap();
        assert!(out.ends_with("results/run1") && !out.exists());
    }
}
