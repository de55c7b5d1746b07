//! A closure that captures its environment must not compile, and the error must point to
//! `map_with`. Builds a tiny job crate with cargo and checks the compiler's verdict.

use std::process::Command;

fn build_fixture(source: &str) -> (bool, String) {
    let repo = &weft_tests::repo_root();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"capture\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nweft = {{ path = {:?} }}\n\n[workspace]\n",
            repo.join("sdk")
        ),
    )
    .unwrap();
    // Reuse the workspace's pinned versions so no new crates are fetched.
    std::fs::copy(repo.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), source).unwrap();
    let target = weft_tests::target_dir().join("compile-fail");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--target", "wasm32-wasip1"])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cannot run cargo");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_capturing_closure_is_a_compile_error_that_points_to_map_with() {
    let capturing = "use weft::prelude::*;\nfn main() {\n    let ctx = Context::new();\n    let n = 3u32;\n    let ds = ctx.parallelize(vec![1u32, 2], 1);\n    let _ = ds.map(move |x: u32| x + n).collect();\n}\n";
    let (ok, stderr) = build_fixture(capturing);
    assert!(!ok, "a capturing closure compiled");
    assert!(stderr.contains("captures variables from its environment"), "{stderr}");
    assert!(stderr.contains("map_with"), "{stderr}");

    // The same job written with `map_with` compiles: the check is not rejecting everything.
    let explicit =
        capturing.replace("ds.map(move |x: u32| x + n)", "ds.map_with(n, |n, x: u32| x + *n)");
    let (ok, stderr) = build_fixture(&explicit);
    assert!(ok, "the map_with version failed to compile:\n{stderr}");
}
