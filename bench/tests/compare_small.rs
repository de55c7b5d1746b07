//! The benchmark suite at a small size, so that it cannot rot: every workload on every engine
//! (real `weft run` processes, a real cluster on loopback, real PySpark when available), answers
//! checked against each other. Correctness only: no times are asserted.
//!
//! In CI (`CI=true`) the PySpark engines are required (`scripts/test.sh` sets them up); elsewhere
//! they are left out, with a notice, on a machine without Java or the virtual environment.

use std::process::Command;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weft-bench"))
}

#[test]
fn every_engine_agrees_on_every_workload_at_a_small_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let results = dir.path().join("RESULTS.md");
    let mut cmd = bench();
    cmd.args(["compare", "--size-mb", "2", "--sort-records", "100000", "--runs", "1"]);
    cmd.arg("--results").arg(&results);
    cmd.arg("--work-dir").arg(dir.path().join("work"));
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !ci {
        cmd.arg("--spark-optional");
    }
    let out = cmd.output().expect("weft-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weft-bench compare failed:\n{stderr}");
    for workload in ["wordcount", "weblog", "flights", "join", "sort"] {
        assert!(
            stderr.contains(&format!("{workload}: all engines computed the same answer")),
            "{workload} not checked:\n{stderr}"
        );
    }
    let report = std::fs::read_to_string(&results).expect("results written");
    let spark = !stderr.contains("leaving out the PySpark engines");
    assert!(spark || !ci, "CI must run the PySpark engines:\n{stderr}");
    let engines = ["weft run", "Weft cluster", "native Rust", "PySpark RDD", "PySpark DataFrame"];
    for engine in engines.iter().take(if spark { 5 } else { 3 }) {
        // One row per workload.
        let rows = report.lines().filter(|l| l.starts_with(&format!("| {engine} |"))).count();
        assert_eq!(rows, 5, "{engine} rows in:\n{report}");
    }
    // The answers themselves are sane: the web log's malformed lines were found and skipped.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Input: 2 MB of generated access log"), "{stdout}");
    assert!(stdout.contains("Input: 100000 records of random keys"), "{stdout}");
}

#[test]
fn a_missing_pyspark_is_a_clear_error_unless_optional() {
    let out = bench()
        .args(["compare", "--size-mb", "1", "--runs", "1", "--workloads", "flights"])
        .args(["--python", "/nonexistent/python"])
        .output()
        .expect("weft-bench runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/python") && stderr.contains("bench/run.sh"),
        "unclear error: {stderr}"
    );
}

#[test]
fn the_native_engine_refuses_an_unknown_workload_and_a_missing_file() {
    let out = bench().args(["native", "sorting", "/dev/null"]).output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown workload \"sorting\""));
    let out = bench().args(["native", "weblog", "/nonexistent/access.log"]).output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/access.log"));
}
