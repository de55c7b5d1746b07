//! UDF modules end to end: `text_udfs` (built with `weft::udf!`) called by name from the job
//! `udf_caller`, on the embedded engine (`weft run --udf`) and on a cluster of real processes
//! where one tenant pushes the module as public and two tenants' jobs use it. The answers are
//! checked against the same functions computed here; bad calls must fail before any task runs,
//! and a UDF that loops, hogs memory, panics or reaches for the caller's input is stopped.

use std::path::Path;
use std::time::Duration;
use weft_tests::cluster::{Coordinator, Process, Status};
use weft_tests::{Run, guest, weft_run};

const JOIN: Duration = Duration::from_secs(30);

/// The job's input (`udf_caller`'s `lines`).
fn lines() -> Vec<String> {
    (0..2000)
        .map(|i| match i % 4 {
            0 => format!("line {i} is short"),
            1 => format!("line {i} is quite a bit longer than twenty characters"),
            2 => format!("übung {i} mit umlauten ÄÖÜ"),
            _ => String::new(),
        })
        .collect()
}

/// What `udf_caller … text` must print, computed natively.
fn expected_text() -> Vec<String> {
    let lines = lines();
    let chars: usize = lines.iter().map(|l| l.chars().count()).sum();
    let upper: Vec<String> =
        lines.iter().map(|l| l.to_uppercase()).filter(|l| !l.is_empty()).collect();
    let long = lines.iter().filter(|l| l.chars().count() > 20).count();
    let words: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
    let longest = words.iter().map(|w| w.len()).max().unwrap();
    vec![
        format!("chars {chars}"),
        format!("upper {}", upper.join("|").len()),
        format!("upper first {}", upper[2]),
        format!("long {long}"),
        format!("words {}", words.len()),
        format!("longest {longest}"),
    ]
}

/// The job's output without the `bound …` line (which names the version).
fn answers(run: &Run) -> Vec<String> {
    run.stdout.lines().filter(|l| !l.starts_with("bound ")).map(str::to_string).collect()
}

fn run_local(data: &Path, udf: &str, extra: &[&str], args: &[&str]) -> Run {
    let mut options = vec!["--udf", udf];
    options.extend_from_slice(extra);
    weft_run(&guest("udf_caller"), data, &options, args)
}

#[test]
fn udfs_on_the_embedded_engine_answer_like_native_and_bad_calls_and_bad_udfs_are_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let module = guest("text_udfs");
    let udf = format!("acme/text={}", module.display());

    let ok = run_local(data, &udf, &[], &["acme/text@latest", "text"]);
    ok.assert_ok();
    assert_eq!(answers(&ok), expected_text(), "{}", ok.stderr);
    assert!(ok.stdout.starts_with("bound acme/text@"), "{}", ok.stdout);

    // Bad calls fail in the driver, naming the UDF and both signatures.
    run_local(data, &udf, &[], &["acme/text", "mismatch"]).assert_failed_with(&[
        "`char_count` does not match its call",
        "the module declares char_count(String) -> u64",
        "the job calls it as char_count(u64) -> u64",
    ]);
    run_local(data, &udf, &[], &["acme/text", "missing"]).assert_failed_with(&[
        "has no function `char_total`",
        "char_count(String) -> u64",
        "words(String) -> Vec<String>",
    ]);
    run_local(data, &udf, &[], &["acme/other", "text"])
        .assert_failed_with(&["no UDF module acme/other (given with --udf: acme/text)"]);
    run_local(data, &udf, &[], &["acme/text@0123456789ab", "text"])
        .assert_failed_with(&["is version", "not 0123456789ab"]);
    weft_run(&guest("udf_caller"), data, &[], &["acme/text", "text"])
        .assert_failed_with(&["no UDF module acme/text"]);
    // A job module is not a UDF module.
    let not_udf = format!("acme/text={}", guest("udf_caller").display());
    run_local(data, &not_udf, &[], &["acme/text", "text"])
        .assert_failed_with(&["not a UDF module", "weft_udf_call"]);

    // UDFs that misbehave are stopped like any task, and the message says it was the UDF.
    // The spinning UDF meets a short deadline; the others a long one, so that only the limit
    // under test can stop them on a busy machine.
    let spin_limits = ["--task-timeout", "2"];
    let limits = ["--task-timeout", "60", "--memory-limit", "256"];
    run_local(data, &udf, &spin_limits, &["acme/text", "spin"]).assert_failed_with(&[
        "deadline exceeded",
        "map_udf(acme/text@",
        "spin) at",
        "inside the UDF",
    ]);
    run_local(data, &udf, &limits, &["acme/text", "hog"])
        .assert_failed_with(&["memory limit reached: needed more than 256 MiB", "inside the UDF"]);
    run_local(data, &udf, &limits, &["acme/text", "boom"]).assert_failed_with(&[
        "guest panicked",
        "inside the UDF",
        "boom on",
    ]);
    run_local(data, &udf, &limits, &["acme/text", "snoop"])
        .assert_failed_with(&["`input_next` is not available to a UDF"]);
}

/// `weft status --json` once the nodes' counters (sent with heartbeats) have settled.
fn settled(c: &Coordinator) -> Status {
    std::thread::sleep(Duration::from_millis(2500));
    c.status()
}

fn submit(c: &Coordinator, token: &str, args: &[&str]) -> Run {
    let module = guest("udf_caller");
    let mut all = vec![module.to_str().unwrap(), "--follow", "--"];
    all.extend_from_slice(args);
    c.as_token(token, &["submit"], &all)
}

#[test]
fn a_public_udf_module_serves_two_tenants_and_nodes_load_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let join = c.join_token();
    let _nodes: Vec<Process> =
        (1..=3).map(|i| c.node(dir.path(), &format!("n{i}"), &join, 2)).collect();
    c.wait_for_nodes(3, JOIN);
    let acme = c.create_tenant("acme", &[]);
    let globex = c.create_tenant("globex", &[]);
    let module = guest("text_udfs");
    let module = module.to_str().unwrap();
    let push = c.as_token(&acme, &["module", "push"], &["text", module, "--public"]);
    push.assert_ok();
    let version = push.stdout.trim().to_string();
    assert!(version.starts_with("acme/text@"), "{}", push.stdout);
    c.as_token(&acme, &["module", "push"], &["text-private", module]).assert_ok();
    let show = c.as_token(&globex, &["module", "show"], &["acme/text"]);
    show.assert_ok();
    assert!(show.stdout.contains("char_count(String) -> u64"), "{}", show.stdout);

    // acme's job: the UDF module reaches every node once.
    let first = submit(&c, &acme, &["acme/text", "text"]);
    first.assert_ok();
    assert_eq!(answers(&first), expected_text(), "{}", first.stderr);
    let s1 = settled(&c);
    let loads = s1.per_node("udf_compilations");
    assert!(loads.iter().all(|(_, _, n)| *n == 1), "every node loads the UDF once: {loads:?}");
    assert!(s1.nodes_sum("udf_module_bytes") > 0);

    // globex's job, by the public name: no module bytes move, nothing is compiled.
    let second = submit(&c, &globex, &[&version, "text"]);
    second.assert_ok();
    assert_eq!(answers(&second), expected_text());
    let s2 = settled(&c);
    for counter in ["udf_module_bytes", "udf_compilations", "module_bytes_sent", "compilations"] {
        assert_eq!(s2.nodes_sum(counter), s1.nodes_sum(counter), "{counter} changed");
    }
    assert_eq!(s2.coordinator("module_bytes_sent"), s1.coordinator("module_bytes_sent"));
    assert!(s2.nodes_sum("tasks") > s1.nodes_sum("tasks"));

    // Bad calls fail before any task runs.
    let tasks = s2.nodes_sum("tasks");
    submit(&c, &globex, &["acme/text", "mismatch"]).assert_failed_with(&[
        "the module declares char_count(String) -> u64",
        "the job calls it as char_count(u64) -> u64",
    ]);
    submit(&c, &globex, &["acme/text", "missing"])
        .assert_failed_with(&["no function `char_total`"]);
    // Another tenant's private module is no module, as one that does not exist; by hash too.
    let private = submit(&c, &globex, &["acme/text-private", "text"]);
    private.assert_failed_with(&["UDF module acme/text-private: no module acme/text-private"]);
    submit(&c, &globex, &["acme/nothing", "text"])
        .assert_failed_with(&["UDF module acme/nothing: no module acme/nothing"]);
    let hash = weft_sandbox::module_hash(&std::fs::read(module).unwrap());
    submit(&c, &globex, &[&hash, "text"]).assert_failed_with(&[&format!("no module {hash}")]);
    assert_eq!(settled(&c).nodes_sum("tasks"), tasks, "a job whose UDF was refused ran tasks");
    // Its owner may use it by hash.
    assert_eq!(answers(submit(&c, &acme, &[&hash, "text"]).assert_ok()), expected_text());

    // A looping UDF is stopped by the tenant's task timeout.
    let slow = c.create_tenant("slow", &["--task-timeout", "2"]);
    submit(&c, &slow, &["acme/text", "spin"])
        .assert_failed_with(&["deadline exceeded", "inside the UDF"]);
}
