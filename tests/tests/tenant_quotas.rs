//! Tenants' quotas end to end, on a coordinator and three real nodes: the slot cap, asserted
//! from the coordinator's own per-tenant counters; the running-jobs cap, which queues a job
//! until the one before it ends; and the memory and timeout caps a submission may not exceed.

use std::time::{Duration, Instant};
use weft_tests::cluster::{Coordinator, Process};
use weft_tests::{guest, weft};

const JOIN: Duration = Duration::from_secs(30);

fn tenant_json(c: &Coordinator, name: &str) -> serde_json::Value {
    let token = c.admin_token();
    let run = weft(&["tenant", "list", "--coordinator", &c.addr, "--token", &token, "--json"]);
    run.assert_ok();
    let all: serde_json::Value = serde_json::from_str(&run.stdout).expect("tenants JSON");
    all.as_array().unwrap().iter().find(|t| t["name"] == name).cloned().expect("the tenant")
}

fn job_state(c: &Coordinator, token: &str, id: &str) -> (String, String) {
    let run = weft(&["status", "--coordinator", &c.addr, "--token", token, "--json", id]);
    run.assert_ok();
    let jobs: serde_json::Value = serde_json::from_str(&run.stdout).expect("status JSON");
    let j = &jobs[0];
    (j["state"].as_str().unwrap().to_string(), j["waiting"].as_str().unwrap_or("").to_string())
}

fn submit(c: &Coordinator, token: &str, args: &[&str], log: &std::path::Path) -> Process {
    let module = guest("slow_action");
    let mut all = vec!["submit", "--coordinator", &c.addr, "--token", token];
    all.extend([module.to_str().unwrap(), "--follow", "--"]);
    all.extend_from_slice(args);
    Process::start(&all, log.to_path_buf())
}

fn id_of(p: &Process) -> String {
    p.wait_for("submitted job-", JOIN);
    let out = p.output();
    out.lines().find_map(|l| l.strip_prefix("submitted ")).expect("an id").trim().to_string()
}

#[test]
fn a_tenant_never_runs_more_tasks_or_jobs_than_its_caps() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let token = c.join_token();
    let _nodes: Vec<Process> =
        (1..=3).map(|i| c.node(dir.path(), &format!("n{i}"), &token, 2)).collect();
    c.wait_for_nodes(3, JOIN);
    let admin = c.admin_token();
    let create = weft(&[
        "tenant",
        "create",
        "capped",
        "--coordinator",
        &c.addr,
        "--token",
        &admin,
        "--slots",
        "2",
        "--max-running-jobs",
        "1",
        "--memory-limit",
        "512",
        "--task-timeout",
        "60",
    ]);
    create.assert_ok();
    let capped = create.stdout.trim().to_string();

    // Asking more than the caps is refused before anything runs, naming the cap.
    let module = guest("slow_action");
    let module = module.to_str().unwrap();
    for (flag, value, want) in
        [("--memory-limit", "1024", "limit of 512 MiB"), ("--task-timeout", "61", "limit of 60 s")]
    {
        let run = weft(&[
            "submit",
            "--coordinator",
            &c.addr,
            "--token",
            &capped,
            flag,
            value,
            module,
            "--",
            "1",
        ]);
        assert_ne!(run.code, 0);
        assert!(run.stderr.contains(want), "{flag}: {}", run.stderr);
    }

    // Six tasks of 1.5 s each on a cluster of six slots: the tenant may run two at a time. The
    // second job waits for the first.
    let started = Instant::now();
    let first = submit(&c, &capped, &["1500"], &dir.path().join("first.log"));
    let first_id = id_of(&first);
    let mut second = submit(&c, &capped, &["10"], &dir.path().join("second.log"));
    let second_id = id_of(&second);
    let (state, why) = job_state(&c, &capped, &second_id);
    assert_eq!(state, "queued", "{why}");
    assert!(why.contains("runs 1 of at most 1 job"), "{why}");
    let mut first = first;
    assert_eq!(first.wait_exit(Duration::from_secs(120)), Some(0), "{}", first.output());
    assert_eq!(second.wait_exit(Duration::from_secs(120)), Some(0), "{}", second.output());
    assert!(second.output().contains("queued: tenant capped runs 1"), "{}", second.output());
    assert!(second.output().contains("tasks done: 6"), "{}", second.output());
    assert_eq!(job_state(&c, &capped, &first_id).0, "succeeded");
    assert_eq!(job_state(&c, &capped, &second_id).0, "succeeded");
    // Six tasks two at a time: at least three rounds of 1.5 s (a bound from below, which no
    // slowness of the machine can break).
    assert!(started.elapsed() >= Duration::from_millis(4500), "{:?}", started.elapsed());
    let t = tenant_json(&c, "capped");
    assert_eq!(t["peak_running_tasks"], 2, "{t}");
    assert!(t["slot_seconds"].as_f64().unwrap() >= 6.0 * 1.5, "{t}");
    assert_eq!(t["running_jobs"], 0, "{t}");
}
