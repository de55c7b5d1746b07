//! Weighted fair share end to end, on a coordinator and two real nodes of four slots: a tenant
//! that fills the cluster with many jobs does not hold up another tenant's small job by more
//! than about one task, and two saturating tenants of weights 1 and 3 get slot-seconds 1:3,
//! measured by the coordinator's own per-tenant counters.
//!
//! The jobs are `slow_action`: six tasks that each compute for the given milliseconds (by the
//! clock, so that a task lasts as long on a busy machine as on an idle one).

use std::time::{Duration, Instant};
use weft_tests::cluster::{Coordinator, Process};
use weft_tests::guest;

const JOIN: Duration = Duration::from_secs(30);
const END: Duration = Duration::from_secs(180);

fn tenant_json(c: &Coordinator, name: &str) -> serde_json::Value {
    let run = c.as_token(&c.admin_token(), &["tenant", "list"], &["--json"]);
    run.assert_ok();
    let all: serde_json::Value = serde_json::from_str(&run.stdout).expect("tenants JSON");
    all.as_array().unwrap().iter().find(|t| t["name"] == name).cloned().expect("the tenant")
}

fn job_json(c: &Coordinator, id: &str) -> serde_json::Value {
    let run = c.client("status", &["--json", id]);
    run.assert_ok();
    let jobs: serde_json::Value = serde_json::from_str(&run.stdout).expect("status JSON");
    jobs[0].clone()
}

/// `weft submit --follow slow_action -- MILLIS` as `token`, in the background; returns the
/// process and the job's id.
fn submit(c: &Coordinator, token: &str, millis: u64, log: std::path::PathBuf) -> (Process, String) {
    let module = guest("slow_action");
    let millis = millis.to_string();
    let p = Process::start(
        &[
            "submit",
            "--coordinator",
            &c.addr,
            "--token",
            token,
            module.to_str().unwrap(),
            "--follow",
            "--",
            &millis,
        ],
        log,
    );
    p.wait_for("submitted job-", JOIN);
    let out = p.output();
    let id = out.lines().find_map(|l| l.strip_prefix("submitted ")).expect("an id").trim();
    let id = id.to_string();
    (p, id)
}

/// Run one job of `token` to its end; returns how long `weft submit --follow` took, and the id.
fn timed_job(
    c: &Coordinator,
    token: &str,
    millis: u64,
    log: std::path::PathBuf,
) -> (Duration, String) {
    let started = Instant::now();
    let (mut p, id) = submit(c, token, millis, log);
    assert_eq!(p.wait_exit(END), Some(0), "{}", p.output());
    assert!(p.output().contains("tasks done: 6"), "{}", p.output());
    (started.elapsed(), id)
}

/// Wait until the tenants' running tasks add up to every slot.
fn wait_saturated(c: &Coordinator, tenants: &[&str], slots: u64) {
    let start = Instant::now();
    loop {
        let running: u64 =
            tenants.iter().map(|t| tenant_json(c, t)["running_tasks"].as_u64().unwrap()).sum();
        if running == slots {
            return;
        }
        assert!(start.elapsed() < JOIN, "the cluster never filled: {running} of {slots} busy");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cancel_all(c: &Coordinator, jobs: Vec<(Process, String)>) {
    for (_, id) in &jobs {
        c.client("cancel", &[id]).assert_ok();
    }
    for (mut p, id) in jobs {
        assert!(p.wait_exit(END).is_some(), "{id} did not end after its cancel");
    }
}

/// A cluster of two nodes of four slots each.
fn cluster(dir: &std::path::Path) -> (Coordinator, Vec<Process>) {
    let c = Coordinator::start(dir);
    let token = c.join_token();
    let nodes = (1..=2).map(|i| c.node(dir, &format!("n{i}"), &token, 4)).collect();
    c.wait_for_nodes(2, JOIN);
    (c, nodes)
}

const SLOTS: u64 = 8;

/// One test, in two phases on one cluster: timing claims need the machine to themselves, and the
/// tests of one binary run at the same time.
#[test]
fn fair_share_between_tenants_on_a_real_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _nodes) = cluster(dir.path());
    a_small_job_is_held_up_by_a_tenant_that_fills_the_cluster_by_at_most_one_task(&c, dir.path());
    saturating_tenants_of_weights_one_and_three_share_slot_seconds_one_to_three(&c, dir.path());
}

fn a_small_job_is_held_up_by_a_tenant_that_fills_the_cluster_by_at_most_one_task(
    c: &Coordinator,
    dir: &std::path::Path,
) {
    let a = c.create_tenant("a", &[]);
    let b = c.create_tenant("b", &[]);
    // A's tasks last 2 to 2.875 s, one length per job, so that they do not all end together
    // (tasks that all end at once would be a sharper test of nothing but the clock).
    const A_TASK: u64 = 2875;
    let a_task_of = |job: u64| 2000 + 125 * job;
    const B_TASK: u64 = 200;

    // B's job alone on the idle cluster (after a first run that brings the module to the nodes).
    timed_job(c, &b, B_TASK, dir.join("b-warm.log"));
    let (idle, _) = timed_job(c, &b, B_TASK, dir.join("b-idle.log"));

    // A fills the cluster: eight jobs of six tasks, 48 tasks for eight slots.
    let a_jobs: Vec<(Process, String)> =
        (0..8).map(|i| submit(c, &a, a_task_of(i), dir.join(format!("a{i}.log")))).collect();
    wait_saturated(c, &["a"], SLOTS);
    // Past A's first round, when its tasks end at different times.
    std::thread::sleep(Duration::from_secs(3));
    wait_saturated(c, &["a"], SLOTS);

    let (busy, b_busy) = timed_job(c, &b, B_TASK, dir.join("b-busy.log"));
    // A still had work when B ended: B did not get an idle cluster.
    let a_now = tenant_json(c, "a");
    assert!(a_now["running_tasks"].as_u64().unwrap() >= SLOTS - 1, "{a_now}");
    let b_job = job_json(c, &b_busy);
    assert_eq!(b_job["tenant"], "b", "{b_job}");
    let first_task = Duration::from_millis(b_job["first_task_after_ms"].as_u64().unwrap());
    let a_task = Duration::from_millis(A_TASK);
    eprintln!("B alone: {idle:?}; B beside A: {busy:?}, first task after {first_task:?}");
    assert!(first_task <= a_task, "B's first task started {first_task:?} after its submission");
    assert!(
        busy <= 2 * idle + a_task,
        "B took {busy:?} on the busy cluster, {idle:?} on the idle one"
    );
    assert_eq!((&b_job["stages"], &b_job["tasks"]), (&1.into(), &6.into()), "{b_job}");
    cancel_all(c, a_jobs);
}

fn saturating_tenants_of_weights_one_and_three_share_slot_seconds_one_to_three(
    c: &Coordinator,
    dir: &std::path::Path,
) {
    let light = c.create_tenant("light", &["--weight", "1"]);
    let heavy = c.create_tenant("heavy", &["--weight", "3"]);
    // Each tenant has more tasks than its share of the slots can run before the measurement
    // ends: light 4 jobs of six 2 s tasks (48 slot-seconds, two slots' worth for 24 s), heavy
    // 10 jobs (120 slot-seconds, six slots' worth for 20 s).
    let mut jobs = Vec::new();
    for i in 0..10 {
        if i < 4 {
            jobs.push(submit(c, &light, 2000, dir.join(format!("l{i}.log"))));
        }
        jobs.push(submit(c, &heavy, 2000, dir.join(format!("h{i}.log"))));
    }
    wait_saturated(c, &["light", "heavy"], SLOTS);
    // Once both have settled into their shares, over a window in which both stay saturated.
    std::thread::sleep(Duration::from_secs(2));
    let used = |t: &str| tenant_json(c, t)["slot_seconds"].as_f64().unwrap();
    let (light0, heavy0) = (used("light"), used("heavy"));
    std::thread::sleep(Duration::from_secs(6));
    let (light1, heavy1) = (used("light"), used("heavy"));
    // Both still had work at the end of the window.
    for t in ["light", "heavy"] {
        let now = tenant_json(c, t);
        assert!(now["running_tasks"].as_u64().unwrap() >= 1, "{now}");
    }
    let (l, h) = (light1 - light0, heavy1 - heavy0);
    let ratio = h / l;
    eprintln!("slot-seconds in the window: heavy {h:.1}, light {l:.1}, ratio {ratio:.2}");
    assert!(
        (ratio / 3.0 - 1.0).abs() <= 0.15,
        "heavy ÷ light = {ratio:.2} ({h:.1} ÷ {l:.1} slot-seconds)"
    );
    // The window was saturated: eight slots for about six seconds.
    assert!(l + h >= SLOTS as f64 * 5.0, "{l:.1} + {h:.1} slot-seconds");
    cancel_all(c, jobs);
}
