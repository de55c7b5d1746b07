//! Jobs on a real cluster — a coordinator and three nodes, separate processes on 127.0.0.1 —
//! submitted with `weft submit --follow`, checked against `weft run` and native computations,
//! with the counters that show modules are cached and shuffles go node to node.

use std::path::Path;
use std::time::Duration;
use weft_tests::cluster::{Coordinator, Process, Status};
use weft_tests::wordcount::{native_counts, parse_counts, write_books};
use weft_tests::{flights_csv, guest, weft_run};

fn cluster(dir: &Path, nodes: usize) -> (Coordinator, Vec<Process>) {
    cluster_with(dir, nodes, &[])
}

/// A coordinator and `nodes` two-slot nodes started with `extra` options, all registered.
fn cluster_with(dir: &Path, nodes: usize, extra: &[&str]) -> (Coordinator, Vec<Process>) {
    let c = Coordinator::start(dir);
    let nodes: Vec<Process> = (1..=nodes)
        .map(|i| c.node_with(dir, &format!("n{i}"), &c.join_token(), 2, extra))
        .collect();
    for n in &nodes {
        n.wait_for("joined the cluster", Duration::from_secs(20));
    }
    c.wait_for_nodes(nodes.len(), Duration::from_secs(20));
    (c, nodes)
}

/// `weft status --json`, once the nodes' counters (which travel with heartbeats, every second)
/// have settled.
fn counters(c: &Coordinator) -> Status {
    std::thread::sleep(Duration::from_millis(2500));
    c.status()
}

fn submit(c: &Coordinator, job: &str, args: &[&str]) -> weft_tests::Run {
    let module = guest(job);
    let mut all = vec![module.to_str().unwrap(), "--follow", "--"];
    all.extend_from_slice(args);
    c.client("submit", &all)
}

#[test]
fn jobs_on_three_nodes_match_weft_run_and_native_with_cached_modules_and_direct_shuffles() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let texts = write_books(&data.join("books"));
    let (flights, _) = flights_csv();
    std::fs::copy(&flights, data.join("flights.csv.gz")).unwrap();
    let (c, _nodes) = cluster(dir.path(), 3);

    // Word count: same answer as native and as `weft run`.
    let first = submit(&c, "word_count", &["books", "1000000"]);
    first.assert_ok();
    assert!(first.stderr.contains("uploaded module"), "{}", first.stderr);
    assert!(first.stderr.contains("[job-1] stage 1/2 done"), "no progress: {}", first.stderr);
    assert!(first.stderr.contains("[job-1] stage 2/2 done"), "no progress: {}", first.stderr);
    let (total, counts) = parse_counts(&first.stdout);
    let expected = native_counts(&texts);
    assert_eq!(total, expected.values().sum::<u64>());
    assert_eq!(counts, expected);
    let local = weft_run(&guest("word_count"), &data, &["--workers", "2"], &["books", "1000000"]);
    local.assert_ok();
    assert_eq!(first.stdout, local.stdout);

    let s1 = counters(&c);
    assert!(s1.coordinator("module_bytes_sent") > 0);
    assert!(s1.nodes_sum("compilations") >= 1);
    let fetched = s1.nodes_sum("shuffle_bytes_fetched");
    assert!(fetched > 0, "the shuffle went node to node: {}", s1.json);
    assert_eq!(s1.coordinator("shuffle_bytes_relayed"), 0);

    // The same module again: nothing uploaded, nothing sent to nodes, nothing compiled.
    let second = submit(&c, "word_count", &["books", "1000000"]);
    second.assert_ok();
    assert_eq!(second.stdout, first.stdout);
    assert!(!second.stderr.contains("uploaded module"), "{}", second.stderr);
    let s2 = counters(&c);
    assert_eq!(
        s2.coordinator("module_bytes_sent"),
        s1.coordinator("module_bytes_sent"),
        "module bytes were sent again"
    );
    assert_eq!(s2.nodes_sum("compilations"), s1.nodes_sum("compilations"), "a node compiled again");
    assert!(s2.nodes_sum("shuffle_bytes_fetched") > fetched);
    assert_eq!(s2.coordinator("shuffle_bytes_relayed"), 0);

    // Flights: the same table as `weft run` (itself checked against native in examples.rs).
    let on_cluster = submit(&c, "flights", &["flights.csv.gz"]);
    on_cluster.assert_ok();
    let local = weft_run(&guest("flights"), &data, &[], &["flights.csv.gz"]);
    local.assert_ok();
    assert_eq!(on_cluster.stdout, local.stdout);

    let jobs = c.client("jobs", &[]);
    jobs.assert_ok();
    assert_eq!(jobs.stdout.matches("succeeded").count(), 3, "{}", jobs.stdout);
    // Every action's map outputs were released on the nodes when it ended.
    let s3 = counters(&c);
    assert_eq!(s3.nodes_sum("map_outputs_held"), 0, "{}", s3.json);
}

#[test]
fn failures_on_the_cluster_are_reported_to_the_submitter() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _nodes) = cluster(dir.path(), 2);
    let run = submit(&c, "panic_in_closure", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("record 7 is unlucky"), "{}", run.stderr);
    assert!(run.stderr.contains("`map at "), "{}", run.stderr);

    let bogus = dir.path().join("bogus.wasm");
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.extend_from_slice(&[0x7f, 0x01, 0x00]);
    std::fs::write(&bogus, bytes).unwrap();
    let run = c.client("submit", &[bogus.to_str().unwrap(), "--follow"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("invalid WebAssembly module"), "{}", run.stderr);

    let status = c.client("status", &["job-1"]);
    status.assert_ok();
    assert!(status.stdout.contains("failed"), "{}", status.stdout);
}

#[test]
fn a_node_killed_during_a_shuffle_job_does_not_stop_it() {
    let dir = tempfile::tempdir().unwrap();
    let (c, mut nodes) = cluster(dir.path(), 3);
    // 12 map tasks of 2 s on 6 slots: two waves. Kill node `n1` during the second wave, once it
    // reports its first-wave tasks done: it then holds map outputs and runs more tasks.
    let mut submit =
        c.submit_in_background("slow_shuffle", &["2000"], dir.path().join("submit.log"));
    let start = std::time::Instant::now();
    loop {
        let status = c.status();
        if status.node("n1", "tasks").is_some_and(|t| t >= 2) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "n1 never finished a task: {}",
            status.json
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(submit.running(), "the job ended too early to test anything:\n{}", submit.output());
    nodes[0].kill();
    let code = submit.wait_exit(Duration::from_secs(120));
    let output = submit.output();
    assert_eq!(code, Some(0), "{output}\n--- coordinator\n{}", c.process.output());
    let mut expected: Vec<(u64, u64)> =
        (0..10).map(|k| (k, (1..=12_000u64).filter(|x| x % 10 == k).sum())).collect();
    expected.sort();
    let got: Vec<(u64, u64)> = output
        .lines()
        .filter_map(|l| {
            let (k, s) = l.split_once(' ')?;
            Some((k.parse().ok()?, s.parse().ok()?))
        })
        .collect();
    assert_eq!(got, expected, "{output}");
    let log = c.process.output();
    assert!(log.contains("node lost"), "the coordinator never noticed the dead node:\n{log}");
    assert!(log.contains("recomputing them"), "no lost map output was recomputed:\n{log}");
}

#[test]
fn accumulators_stay_exact_when_a_node_is_killed_mid_stage() {
    let dir = tempfile::tempdir().unwrap();
    let (c, mut nodes) = cluster(dir.path(), 3);
    // As above: kill `n1` in the second wave of map tasks, once it holds map outputs. Its
    // outputs are computed again (with their accumulator updates), and its running tasks
    // retried elsewhere; every partition must still count once.
    let mut submit =
        c.submit_in_background("slow_accumulate", &["2000"], dir.path().join("submit.log"));
    let start = std::time::Instant::now();
    while c.status().node("n1", "tasks").is_none_or(|t| t < 2) {
        assert!(start.elapsed() < Duration::from_secs(60), "n1 never finished a task");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(submit.running(), "the job ended too early to test anything:\n{}", submit.output());
    nodes[0].kill();
    let code = submit.wait_exit(Duration::from_secs(120));
    let output = submit.output();
    assert_eq!(code, Some(0), "{output}\n--- coordinator\n{}", c.process.output());
    let total: u64 = (1..=12_000).sum();
    for line in ["records 12000".to_string(), format!("sum {total}"), "ticks 6000".into()] {
        assert!(output.lines().any(|l| l == line), "no line {line:?} in:\n{output}");
    }
    let log = c.process.output();
    assert!(log.contains("recomputing them"), "no lost map output was recomputed:\n{log}");
}

#[test]
fn a_cancelled_job_stops_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _nodes) = cluster(dir.path(), 1);
    // 12 tasks of 2 s on 2 slots: about 12 s if left alone.
    let mut job = c.submit_in_background("slow_shuffle", &["2000"], dir.path().join("job.log"));
    job.wait_for("submitted job-1", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let cancel = c.client("cancel", &["job-1"]);
    cancel.assert_ok();
    assert_eq!(job.wait_exit(Duration::from_secs(30)), Some(1), "{}", job.output());
    assert!(started.elapsed() < Duration::from_secs(8), "cancelling took {:?}", started.elapsed());
    assert!(job.output().contains("the job was cancelled"), "{}", job.output());
    let jobs = c.client("jobs", &[]);
    assert!(jobs.stdout.contains("cancelled"), "{}", jobs.stdout);
    let missing = c.client("cancel", &["job-99"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("no job job-99"), "{}", missing.stderr);
}

#[test]
fn map_outputs_spill_to_disk_past_the_memory_bound_and_are_deleted_after() {
    let dir = tempfile::tempdir().unwrap();
    let texts = write_books(&dir.path().join("data/books"));
    let (c, _nodes) = cluster_with(dir.path(), 2, &["--shuffle-memory", "0"]);
    let run = submit(&c, "word_count", &["books", "1000000"]);
    run.assert_ok();
    let (_, counts) = parse_counts(&run.stdout);
    assert_eq!(counts, native_counts(&texts));
    let totals = counters(&c);
    assert!(totals.nodes_sum("shuffle_bytes_spilled") > 0, "{}", totals.json);
    assert_eq!(totals.nodes_sum("map_outputs_held"), 0, "{}", totals.json);
    for i in 1..=2 {
        let spill = dir.path().join(format!("work-n{i}/shuffle"));
        let left = std::fs::read_dir(&spill).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "spill files left in {}", spill.display());
    }
}

#[test]
fn text_output_and_job_logs_on_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _nodes) = cluster(dir.path(), 2);
    let data = dir.path().join("data");

    // Parts are written by the nodes and appear only as a whole.
    submit(&c, "save_text", &["out/numbers", "1000"]).assert_ok();
    let out = data.join("out/numbers");
    let mut numbers: Vec<u32> = std::fs::read_dir(&out)
        .unwrap()
        .flat_map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .map(|l| l.parse().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=1000).collect::<Vec<_>>());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4);
    let failed = submit(&c, "save_text", &["broken", "1000", "fail"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let left: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["out"], "a failed save left something behind: {left:?}");

    // What tasks print and what sources skip reaches the submitter.
    let chatty = submit(&c, "chatty", &[]);
    chatty.assert_ok();
    assert!(
        chatty.stderr.contains("[stage 0 task 0 stdout] hello from a task"),
        "{}",
        &chatty.stderr[..chatty.stderr.len().min(2000)]
    );
    std::fs::write(data.join("scores.csv"), "name,score\nann,3\nbob,x7\ncy,4\n").unwrap();
    let skipping = submit(&c, "csv_rows", &["scores.csv", "skip"]);
    skipping.assert_ok();
    assert_eq!(skipping.stdout.trim(), "rows=2 sum=7");
    assert!(skipping.stderr.contains("skipped 1 malformed CSV row(s)"), "{}", skipping.stderr);
    assert!(skipping.stderr.contains("scores.csv line 3, column 2 (score)"), "{}", skipping.stderr);
}

#[test]
fn a_cached_dataset_survives_the_loss_of_a_node_holding_its_blocks_between_two_actions() {
    let dir = tempfile::tempdir().unwrap();
    let (c, mut nodes) = cluster(dir.path(), 3);
    let mut submit =
        c.submit_in_background("cached_twice", &["6000"], dir.path().join("submit.log"));
    submit.wait_for("first 12000", Duration::from_secs(60));
    // The blocks stay on the nodes between the actions (the action's own outputs are gone).
    let held = counters(&c).per_node("map_outputs_held");
    let (victim, _, blocks) =
        held.iter().find(|(_, _, n)| *n > 0).cloned().expect("a node holding cached blocks");
    let total: u64 = held.iter().map(|(_, _, n)| n).sum();
    assert_eq!(total, 12, "one block per partition: {held:?}");
    // Node `n<i>` is `nodes[i - 1]`.
    let at: usize = victim.trim_start_matches('n').parse::<usize>().expect("a node name") - 1;
    nodes[at].kill();
    let code = submit.wait_exit(Duration::from_secs(120));
    let output = submit.output();
    assert_eq!(code, Some(0), "{output}\n--- coordinator\n{}", c.process.output());
    let sum: u64 = (0..12_000).sum();
    assert!(output.lines().any(|l| l == format!("second {sum}")), "{output}");
    // What the lost node held was computed again, the rest read from the blocks.
    let computed = 12_000 + 1000 * blocks;
    assert!(output.lines().any(|l| l == format!("computed {computed}")), "{output}");
    let read = format!("cache: 12 partitions kept from earlier actions, {blocks} computed");
    assert!(output.contains(&read), "no {read:?} in\n{output}");
}

/// The table `big_broadcast` builds, and the sum it computes over it.
fn broadcast_sum(megabytes: usize) -> u64 {
    let mut state = 7u64;
    let table: Vec<u8> = (0..megabytes << 20)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    (0..60_000u64)
        .map(|i| u64::from(table[(i.wrapping_mul(2_654_435_761) % table.len() as u64) as usize]))
        .sum()
}

#[test]
fn a_large_broadcast_reaches_each_node_once_and_task_descriptions_stay_small() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _nodes) = cluster(dir.path(), 2);
    let run = submit(&c, "big_broadcast", &["20"]);
    run.assert_ok();
    assert!(
        run.stdout.lines().any(|l| l == format!("sum {}", broadcast_sum(20))),
        "{}",
        run.stdout
    );
    let status = counters(&c);
    let tasks = status.nodes_sum("tasks");
    assert!(tasks >= 60, "{tasks} tasks");
    let table = 20u64 << 20;
    for (node, _, fetched) in status.per_node("broadcasts_fetched") {
        assert_eq!(fetched, 1, "node {node} fetched the broadcast {fetched} times");
    }
    for (node, _, bytes) in status.per_node("broadcast_bytes") {
        assert!((table..table + 64).contains(&bytes), "node {node} fetched {bytes} bytes");
    }
    let sent = status.coordinator("broadcast_bytes");
    assert!((2 * table..2 * table + 128).contains(&sent), "the coordinator sent {sent} bytes");
    let per_task = status.nodes_sum("task_spec_bytes") / tasks;
    eprintln!(
        "{tasks} tasks; fetched per node {:?}; the coordinator sent {sent} bytes; {per_task} \
         bytes per task description",
        status.per_node("broadcast_bytes")
    );
    assert!(per_task < 16 << 10, "task descriptions of {per_task} bytes on average");
}
