//! What no job and no peer may do to a cluster, with real processes on 127.0.0.1 (and, where a
//! peer must misbehave, a fake node of the test's own): run more tasks than the nodes offer,
//! make a host allocate per absurd partition count, send results larger than a frame, hang a
//! job by never answering, or read another job's shuffle data.

use std::path::Path;
use std::time::{Duration, Instant};
use weft_abi::task::{MapOutputId, ShuffleKey};
use weft_tests::cluster::{Coordinator, Process};
use weft_tests::fake_node::{Behaviour, FakeNode, node_identity};
use weft_tests::{guest, weft_run};
use weft_wire::pki::NODE_NAME;
use weft_wire::protocol::{Request, Response};
use weft_wire::transport::{self, ServerTrust};

const START: Duration = Duration::from_secs(20);

fn nodes(c: &Coordinator, dir: &Path, names: &[&str], slots: u32) -> Vec<Process> {
    let nodes: Vec<Process> =
        names.iter().map(|n| c.node(dir, n, &c.join_token(), slots)).collect();
    for n in &nodes {
        n.wait_for("joined the cluster", START);
    }
    nodes
}

fn submit(c: &Coordinator, job: &str, args: &[&str]) -> weft_tests::Run {
    let module = guest(job);
    let mut all = vec![module.to_str().unwrap(), "--follow", "--"];
    all.extend_from_slice(args);
    c.client("submit", &all)
}

/// Wait (off the async threads) for a background `weft submit` to end: its exit code (`None`
/// on timeout) and its output.
async fn finished(mut job: Process, timeout: Duration) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let code = job.wait_exit(timeout);
        (code, job.output())
    })
    .await
    .unwrap()
}

/// What `slow_shuffle` prints: `key sum` for every key.
fn slow_shuffle_answer() -> String {
    (0..10u64)
        .map(|k| format!("{k} {}\n", (1..=12_000u64).filter(|x| x % 10 == k).sum::<u64>()))
        .collect()
}

#[test]
fn two_concurrent_jobs_never_run_more_tasks_than_the_nodes_have_slots() {
    // Regression: slots were counted per job, so two jobs each filled every slot of every node.
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _nodes = nodes(&c, dir.path(), &["n1", "n2"], 2);
    c.wait_for_nodes(2, START);
    // Two jobs of 12 map tasks of 600 ms each, submitted together.
    let mut a = c.submit_in_background("slow_shuffle", &["600"], dir.path().join("a.log"));
    let mut b = c.submit_in_background("slow_shuffle", &["600"], dir.path().join("b.log"));
    for job in [&mut a, &mut b] {
        assert_eq!(job.wait_exit(Duration::from_secs(120)), Some(0), "{}", job.output());
        assert!(job.output().ends_with(&slow_shuffle_answer()), "{}", job.output());
    }
    std::thread::sleep(Duration::from_millis(2500));
    let status = c.status();
    let per_node = status.per_node("peak_running_tasks");
    assert_eq!(per_node.len(), 2, "{}", status.json);
    for (name, slots, peak) in per_node {
        assert!(peak >= 1 && peak <= slots, "{name} ran {peak} tasks at once on {slots} slots");
    }
    assert_eq!(
        status.nodes_sum("tasks_refused"),
        0,
        "the coordinator over-assigned: {}",
        status.json
    );
    assert!(status.nodes_sum("tasks") >= 26, "{}", status.json);
}

#[test]
fn absurd_partition_counts_are_refused_with_the_reason_and_nothing_crashes() {
    // Regression: `reduce_by_key_into(f, u32::MAX)` made the scheduler and every node allocate
    // per partition.
    let dir = tempfile::tempdir().unwrap();
    for case in ["shuffle", "inline"] {
        let run = weft_run(&guest("huge_partitions"), dir.path(), &[], &[case]);
        assert_eq!(run.code, 3, "{case}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("at most 65536 are allowed"), "{case}: {}", run.stdout);
    }
    let c = Coordinator::start(&dir.path().join("cluster"));
    let _nodes = nodes(&c, &dir.path().join("cluster"), &["n1"], 2);
    let run = submit(&c, "huge_partitions", &["shuffle"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stdout.contains("asks for 4294967295 partitions"), "{}", run.stdout);
    // The coordinator and the node are still there and serve the next job.
    let next = submit(&c, "tiny_sum", &[]);
    next.assert_ok();
    assert_eq!(next.stdout.trim(), "500500");
}

#[test]
fn large_results_stream_back_and_results_over_the_limit_fail_at_once_with_the_cause() {
    // Regression: a task reply over the 64 MiB frame limit was reported as a lost node and
    // retried four times.
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start_with(dir.path(), &["--max-result-size", "100"]);
    let _nodes = nodes(&c, dir.path(), &["n1"], 1);
    let run = submit(&c, "big_result", &["80"]);
    run.assert_ok();
    let records = (80u64 << 20) / 64;
    assert_eq!(run.stdout.trim(), format!("records={records} bytes={}", records * 62));
    let over = submit(&c, "big_result", &["120"]);
    assert_eq!(over.code, 1, "{}", over.stderr);
    assert!(over.stderr.contains("exceed 100 MiB"), "{}", over.stderr);
    assert!(
        !over.stderr.contains("retrying"),
        "a deterministic failure was retried: {}",
        over.stderr
    );
    assert!(!over.stderr.contains("was lost"), "{}", over.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_takes_tasks_and_never_answers_cannot_hang_a_job() {
    // Regression: nothing above QUIC had a deadline, so a connected but stuck node held a task,
    // and its job, forever.
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start_with(dir.path(), &["--task-timeout", "1"]);
    let fake = FakeNode::join(&c.addr, &c.join_token(), 1, Behaviour::Silent).await;
    let _real = nodes(&c, dir.path(), &["n1"], 2);
    c.wait_for_nodes(2, START);
    let started = Instant::now();
    // Three tasks on three slots: one lands on the stuck node.
    let job = c.submit_in_background("slow_action", &["10"], dir.path().join("job.log"));
    let code = finished(job, Duration::from_secs(150)).await;
    assert!(fake.tasks_received() >= 1, "the stuck node was never given a task");
    assert_eq!(code.0, Some(0), "{}", code.1);
    assert!(code.1.contains("tasks done: 6"), "{}", code.1);
    assert!(code.1.contains("did not answer within"), "{}", code.1);
    assert!(started.elapsed() < Duration::from_secs(120), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shuffle_fetch_from_a_stuck_node_gives_up_at_the_task_deadline() {
    // Regression: a reduce task fetching from a node that accepted the fetch and never sent
    // anything waited forever, whatever its deadline.
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start_with(dir.path(), &["--task-timeout", "2"]);
    // The fake node takes some of the map tasks (it is first among equals) and claims their
    // outputs; the real node's reduce tasks then fetch from it.
    let _fake = FakeNode::join(&c.addr, &c.join_token(), 1, Behaviour::ClaimMapOutputs).await;
    let _real = nodes(&c, dir.path(), &["n1"], 2);
    c.wait_for_nodes(2, START);
    let log = dir.path().join("job.log");
    let job = c.submit_in_background("slow_shuffle", &["1"], log.clone());
    let started = Instant::now();
    let gave_up = loop {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let line = output
            .lines()
            .find(|l| l.contains("fetch error") && l.contains("did not answer within"))
            .map(str::to_string);
        if let Some(line) = line {
            break line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no reduce task gave up on its fetch:\n{output}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(gave_up.contains("retrying"), "{gave_up}");
    // The job can still be stopped at once, stuck node or not.
    c.client("cancel", &["job-1"]).assert_ok();
    let (code, output) = finished(job, Duration::from_secs(30)).await;
    assert_eq!(code, Some(1), "{output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_is_served_only_to_a_fetch_that_presents_the_job_s_shuffle_key() {
    // Regression: any holder of a node certificate could fetch any job's buckets by their
    // guessable ids.
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _nodes = nodes(&c, dir.path(), &["n1", "n2"], 2);
    c.wait_for_nodes(2, START);
    // 12 map tasks of 1.5 s on 4 slots: outputs of the first wave wait while later ones run.
    let job = c.submit_in_background("slow_shuffle", &["1500"], dir.path().join("job.log"));
    let started = Instant::now();
    let status = loop {
        let status = c.status();
        if status.nodes_sum("map_outputs_held") > 0 {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no map output was ever held");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (identity, ca) = node_identity(&c.addr, &c.join_token()).await;
    let endpoint = transport::client_endpoint(ServerTrust::Ca(ca), Some(&identity)).unwrap();
    let mut refused = 0;
    for node in status.json["nodes"].as_array().unwrap() {
        let addr = node["shuffle_addr"].as_str().unwrap().parse().unwrap();
        let conn = transport::connect_to(&endpoint, addr, NODE_NAME).await.unwrap();
        for partition in 0..12 {
            let map = MapOutputId { job: "job-1".into(), action: 1, stage: 0, partition };
            let guess = Request::FetchBucket { map, bucket: 0, key: ShuffleKey("0".repeat(64)) };
            match transport::request(&conn, &guess).await.unwrap() {
                Response::Refused { reason } => {
                    assert!(reason.contains("no map output"), "{reason}");
                    refused += 1;
                }
                other => panic!("a guessed fetch was served: {other:?}"),
            }
        }
    }
    assert_eq!(refused, 24);
    let (code, output) = finished(job, Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.ends_with(&slow_shuffle_answer()), "{output}");
}
