//! Helpers for the end-to-end tests: where the built `weft` binary and guest modules are, and
//! running `weft` as a real process.
//!
//! The binary and the guests are built by `scripts/test.sh` before `cargo test` runs; they are
//! found in the same target directory as the test executable itself.

pub mod cluster;
pub mod fake_node;
pub mod rdd_data;
pub mod wordcount;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The cargo target directory this test (or benchmark) binary was built into: the first
/// ancestor of the executable that holds `release/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("release").is_dir())
        .expect("binary inside a cargo target directory")
        .to_path_buf()
}

/// The `weft` CLI binary.
pub fn weft_bin() -> PathBuf {
    let bin = target_dir().join("release/weft");
    assert!(bin.exists(), "{} is missing: run scripts/test.sh, which builds it", bin.display());
    bin
}

/// A guest module by name (e.g. `word_count`, `spin_in_closure`).
pub fn guest(name: &str) -> PathBuf {
    let wasm = target_dir().join(format!("wasm32-wasip1/release/{name}.wasm"));
    assert!(
        wasm.exists(),
        "{} is missing: run scripts/test.sh, which builds the guests",
        wasm.display()
    );
    wasm
}

/// The result of one `weft` process.
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panic with the whole output unless the process succeeded.
    pub fn assert_ok(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "weft failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panic unless the process failed with a normal non-zero exit (not a crash) and stderr
    /// contains every one of `needles`.
    pub fn assert_failed_with(&self, needles: &[&str]) -> &Run {
        assert!(
            self.code > 0,
            "expected a clean failure, got exit code {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}\n--- stderr\n{}",
                self.stderr
            );
        }
        self
    }
}

/// Run `weft run <module> --data-dir <data> <extra...> -- <args...>`.
pub fn weft_run(module: &Path, data: &Path, extra: &[&str], args: &[&str]) -> Run {
    let output = Command::new(weft_bin())
        .arg("run")
        .arg(module)
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .arg("--")
        .args(args)
        .output()
        .expect("cannot start weft");
    Run::from(output)
}

/// Run `weft` with arbitrary arguments.
pub fn weft(args: &[&str]) -> Run {
    Run::from(Command::new(weft_bin()).args(args).output().expect("cannot start weft"))
}

/// The repository's root.
///
/// Taken at run time from `CARGO_MANIFEST_DIR`, which cargo sets for the tests and programs it
/// runs, before the path compiled in: checkouts that share a target directory share its builds,
/// and cargo does not rebuild a crate because its checkout moved, so the compiled-in path may
/// name another (perhaps deleted) checkout.
pub fn repo_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    // The tests' crate and the benchmark's both sit one level below the root.
    manifest.parent().expect("repo root").to_path_buf()
}

/// The nycflights13 file when the shared data folder is next to the repository, else the sample
/// shipped with the flights example.
pub fn flights_csv() -> (PathBuf, &'static str) {
    let repo = repo_root();
    let full = repo.join("../shared/data/nycflights13/flights.csv.gz");
    if full.exists() {
        (full.canonicalize().expect("canonical path"), "full nycflights13")
    } else {
        (repo.join("guest-examples/flights/data/flights-sample.csv.gz"), "bundled sample")
    }
}

/// Read a text file, gunzipping `.gz`.
pub fn read_text(path: &Path) -> String {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_string(&mut s).expect("gunzip");
        s
    } else {
        String::from_utf8(bytes).expect("utf-8")
    }
}
