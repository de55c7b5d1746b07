//! The sandbox holds: each misbehaving guest is stopped with a clear error, and `weft` itself
//! exits normally (non-zero) rather than crashing.

use std::path::Path;
use weft_tests::{guest, weft, weft_run};

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/inside.txt"), "one\ntwo\n").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "top secret\n").unwrap();
    dir
}

#[test]
fn an_endless_loop_in_a_closure_stops_at_the_task_deadline() {
    let dir = data_dir();
    let run = weft_run(&guest("spin_in_closure"), dir.path(), &["--task-timeout", "1"], &[]);
    run.assert_failed_with(&["deadline exceeded", "1s limit", "`map at ", "spin_in_closure.rs"]);
}

#[test]
fn an_endless_loop_in_main_stops_at_the_driver_deadline() {
    let dir = data_dir();
    let run = weft_run(&guest("spin_in_main"), dir.path(), &["--task-timeout", "1"], &[]);
    run.assert_failed_with(&["the driver failed", "deadline exceeded", "the driver (main)"]);
    // The action before the loop ran and printed: waiting for it did not use up the budget.
    assert!(run.stdout.contains("counted 100"), "{}", run.stdout);
}

#[test]
fn unbounded_allocation_stops_at_the_memory_limit() {
    let dir = data_dir();
    let run = weft_run(&guest("alloc_forever"), dir.path(), &["--memory-limit", "64"], &[]);
    run.assert_failed_with(&["memory limit reached", "64 MiB", "`map at "]);
}

#[test]
fn guests_see_no_host_files_and_no_environment() {
    let dir = data_dir();
    let run = weft_run(&guest("host_access"), dir.path(), &[], &[]);
    run.assert_ok();
    for place in ["driver", "task"] {
        for probe in ["passwd: denied", "cwd: denied", "env vars: 0", "PATH: unset"] {
            let line = format!("{place} {probe}");
            assert!(run.stdout.contains(&line), "missing {line:?} in\n{}", run.stdout);
        }
    }
    assert!(!run.stdout.contains("root:"), "passwd content leaked");
}

#[test]
fn a_panic_in_a_closure_reports_its_message_and_operator() {
    let dir = data_dir();
    let run = weft_run(&guest("panic_in_closure"), dir.path(), &[], &[]);
    run.assert_failed_with(&[
        "guest panicked in `map at ",
        "panic_in_closure.rs",
        "record 7 is unlucky",
    ]);
}

#[test]
fn paths_outside_the_data_dir_are_refused() {
    let dir = data_dir();
    let data = dir.path().join("data");
    let run = weft_run(&guest("read_path"), &data, &[], &["inside.txt"]);
    run.assert_ok();
    assert_eq!(run.stdout.trim(), "2 lines");
    let secret = dir.path().join("secret.txt");
    std::os::unix::fs::symlink(&secret, data.join("link.txt")).unwrap();
    for path in ["../secret.txt", secret.to_str().unwrap(), "/etc/passwd", "link.txt", "../*.txt"] {
        let run = weft_run(&guest("read_path"), &data, &[], &[path]);
        run.assert_failed_with(&["is outside the data directory"]);
        assert!(!run.stdout.contains("lines"), "{path}: {}", run.stdout);
    }
    let run = weft_run(&guest("read_path"), &data, &[], &["missing.txt"]);
    run.assert_failed_with(&["`missing.txt` not found in the data directory"]);
}

#[test]
fn corrupt_and_foreign_modules_are_refused_at_load() {
    let dir = data_dir();
    let real = std::fs::read(guest("word_count")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("text.wasm", b"this is not wasm at all".to_vec(), "not a WebAssembly module"),
        ("truncated.wasm", real[..real.len() / 2].to_vec(), "invalid WebAssembly module"),
        (
            "bad-section.wasm",
            {
                // The first section's id turned into one that does not exist.
                let mut m = real.clone();
                m[8] = 0x7f;
                m
            },
            "invalid WebAssembly module",
        ),
        // A valid module that is not a Weft job: the minimal empty module.
        ("empty.wasm", b"\0asm\x01\0\0\0".to_vec(), "not a Weft job"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let run = weft_run(&path, dir.path(), &[], &[]);
        run.assert_failed_with(&[expected]);
    }
    let run = weft_run(Path::new("/nonexistent/job.wasm"), dir.path(), &[], &[]);
    run.assert_failed_with(&["cannot read /nonexistent/job.wasm"]);
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let run = weft(&["run"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = weft(&["run", "x.wasm", "--memory-limit", "0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--memory-limit"), "{}", run.stderr);
}

#[test]
fn time_spent_waiting_for_actions_does_not_count_against_the_driver() {
    let dir = data_dir();
    // Six tasks of 700 ms on one worker: the action takes over 4 s, the budget is 2 s, and every
    // task stays under its own 2 s deadline.
    let run = weft_run(
        &guest("slow_action"),
        dir.path(),
        &["--task-timeout", "2", "--workers", "1"],
        &["700"],
    );
    run.assert_ok();
    assert_eq!(run.stdout.trim(), "tasks done: 6");
}

#[test]
fn task_output_is_captured_with_a_cap_and_labelled() {
    let dir = data_dir();
    let run = weft_run(&guest("chatty"), dir.path(), &[], &[]);
    run.assert_ok();
    assert_eq!(run.stdout.trim(), "count: 1");
    assert!(
        run.stderr.contains("[stage 0 task 0 stdout] hello from a task"),
        "{}",
        &run.stderr[..500]
    );
    assert!(run.stderr.contains("[stage 0 task 0 stderr] chatter line 0 "));
    // About 5 MB were printed; at most the 64 KiB cap reaches the log.
    assert!(run.stderr.len() < 100 << 10, "{} bytes of stderr", run.stderr.len());
    assert!(!run.stderr.contains("chatter line 99999"));
}

#[test]
fn an_action_inside_a_closure_fails_the_task_cleanly() {
    let dir = data_dir();
    let run = weft_run(&guest("nested_action"), dir.path(), &[], &[]);
    run.assert_failed_with(&["actions can only run in the driver", "`map at "]);
}

#[test]
fn a_memory_limit_below_the_module_s_own_needs_is_reported_as_such() {
    let dir = data_dir();
    let run =
        weft_run(&guest("read_path"), dir.path(), &["--memory-limit", "1"], &["data/inside.txt"]);
    run.assert_failed_with(&["memory limit reached", "1 MiB"]);
}

#[test]
fn deadlines_keep_firing_after_the_engine_a_module_came_from_is_dropped() {
    // Regression: the epoch ticker stopped with the `Engine`, so a module outliving its engine
    // ran without deadlines.
    use weft_abi::plan::{ActionOutput, ActionReply, InlineBatch};
    use weft_sandbox::capture::CapturedOutput;
    use weft_sandbox::{Engine, JobModule, SandboxPolicy, TaskError};
    let engine = Engine::new().unwrap();
    let wasm = std::fs::read(guest("spin_in_main")).unwrap();
    let policy = SandboxPolicy {
        task_timeout: std::time::Duration::from_secs(1),
        driver_timeout: std::time::Duration::from_secs(1),
        ..SandboxPolicy::default()
    };
    let module = JobModule::new(&engine, &wasm).unwrap().with_policy(policy);
    drop(engine);
    // The driver's one action is answered at once (100 records), then it spins.
    let count = InlineBatch(rmp_serde::to_vec(&100u64).unwrap());
    let reply = rmp_serde::to_vec(&ActionReply::Done(ActionOutput {
        batches: vec![count],
        ..Default::default()
    }))
    .unwrap();
    let handler = Box::new(move |_kind, _request: &[u8]| reply.clone());
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (out, err) = (CapturedOutput::buffer(1 << 10), CapturedOutput::buffer(1 << 10));
        let _ = done.send((module.run_driver(&[], &out, &err, handler), out.contents().0));
    });
    let (result, stdout) = finished
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the spinning driver was never stopped");
    assert_eq!(String::from_utf8_lossy(&stdout).trim(), "counted 100");
    assert!(matches!(result, Err(TaskError::DeadlineExceeded { .. })), "{result:?}");
}
