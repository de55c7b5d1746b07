//! The compiled-module cache of `weft run`: filled on the first run, used on the next, recovered
//! when an entry is damaged, refused when other users could write to it.

use std::path::{Path, PathBuf};
use weft_tests::{guest, weft_run};

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    found.sort();
    found
}

#[test]
fn a_module_is_compiled_once_and_a_damaged_entry_is_compiled_again() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("t.txt"), "the cat and the hat\nthe end\n").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("modules");
    let flags = ["--module-cache", dir.to_str().unwrap(), "--timings"];
    let first = weft_run(&guest("word_count"), data.path(), &flags, &["t.txt"]);
    first.assert_ok();
    assert!(first.stdout.contains("3  the"), "{}", first.stdout);
    let cached = entries(&dir);
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].extension().is_some_and(|e| e == "cwasm"), "{cached:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the cache directory is private");
    }

    let second = weft_run(&guest("word_count"), data.path(), &flags, &["t.txt"]);
    second.assert_ok();
    assert_eq!(second.stdout, first.stdout);
    assert_eq!(entries(&dir), cached, "the entry is reused, not written again");

    // A damaged entry is dropped and the module compiled again; the answer does not change.
    std::fs::write(&cached[0], b"not a compiled module").unwrap();
    let third = weft_run(&guest("word_count"), data.path(), &flags, &["t.txt"]);
    third.assert_ok();
    assert_eq!(third.stdout, first.stdout);
    assert_ne!(std::fs::read(&cached[0]).unwrap(), b"not a compiled module");
}

#[cfg(unix)]
#[test]
fn a_cache_others_can_write_to_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("t.txt"), "one two two\n").unwrap();
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let flags = ["--module-cache", cache.path().to_str().unwrap()];
    let run = weft_run(&guest("word_count"), data.path(), &flags, &["t.txt"]);
    run.assert_ok();
    assert!(run.stderr.contains("other users may write to it"), "{}", run.stderr);
    assert!(entries(cache.path()).is_empty());

    let run = weft_run(&guest("word_count"), data.path(), &["--no-module-cache"], &["t.txt"]);
    run.assert_ok();
}
