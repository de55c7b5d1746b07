//! Tenants end to end: real `weft coordinator` and `weft node` processes, tenants made with
//! `weft tenant`, jobs submitted with their tokens over QUIC. What one tenant may see and read
//! of another's, token rotation, and what a coordinator restart (SIGKILL) keeps.

use std::path::Path;
use std::time::Duration;
use weft_tests::cluster::{Coordinator, Process};
use weft_tests::{Run, guest};

const JOIN: Duration = Duration::from_secs(30);

fn as_token(c: &Coordinator, token: &str, command: &[&str], args: &[&str]) -> Run {
    c.as_token(token, command, args)
}

fn create_tenant(c: &Coordinator, name: &str, extra: &[&str]) -> String {
    c.create_tenant(name, extra)
}

/// `weft submit --follow` of `read_path` with `path`, as `token`.
fn read(c: &Coordinator, token: &str, path: &str) -> Run {
    let module = guest("read_path");
    as_token(c, token, &["submit"], &[module.to_str().unwrap(), "--follow", "--", path])
}

fn job_ids(c: &Coordinator, token: &str) -> Vec<(String, String, String)> {
    let run = as_token(c, token, &["jobs"], &["--json"]);
    run.assert_ok();
    let jobs: serde_json::Value = serde_json::from_str(&run.stdout).expect("jobs JSON");
    jobs.as_array()
        .expect("a list")
        .iter()
        .map(|j| {
            let s = |k: &str| j[k].as_str().unwrap_or_default().to_string();
            (s("id"), s("tenant"), s("state"))
        })
        .collect()
}

fn submitted_id(run: &Run) -> String {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("submitted "))
        .unwrap_or_else(|| panic!("no job id in: {}", run.stderr))
        .trim()
        .to_string()
}

fn start_nodes(c: &Coordinator, dir: &Path, n: usize) -> Vec<Process> {
    let token = c.join_token();
    let nodes: Vec<Process> = (1..=n).map(|i| c.node(dir, &format!("n{i}"), &token, 1)).collect();
    for node in &nodes {
        node.wait_for("joined the cluster", JOIN);
    }
    c.wait_for_nodes(n, JOIN);
    nodes
}

#[test]
fn tenants_see_and_read_only_their_own_jobs_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _nodes = start_nodes(&c, dir.path(), 3);
    let acme = create_tenant(&c, "acme", &["--slots", "2"]);
    let globex = create_tenant(&c, "globex", &[]);
    let initech = create_tenant(&c, "initech", &["--weight", "3"]);
    let data = dir.path().join("data");
    std::fs::write(data.join("acme/mine.txt"), "a\nb\nc\n").unwrap();
    std::fs::write(data.join("globex/secret.txt"), "1\n2\n3\n4\n5\n").unwrap();
    std::fs::write(data.join("admins.txt"), "x\n").unwrap();
    std::os::unix::fs::symlink(data.join("globex/secret.txt"), data.join("acme/link.txt")).unwrap();

    // A tenant's job reads its own data, on the nodes, through its data root.
    let run = read(&c, &acme, "mine.txt");
    run.assert_ok();
    assert!(run.stdout.contains("3 lines"), "{}", run.stdout);
    let acme_job = submitted_id(&run);

    // Every way out of acme's data root is refused, and nothing of globex's file is read.
    let secret = data.join("globex/secret.txt");
    for path in [
        "../globex/secret.txt",
        secret.to_str().unwrap(),
        "link.txt",
        "../globex/*.txt",
        "../*/secret.txt",
        "../admins.txt",
        "..",
    ] {
        let run = read(&c, &acme, path);
        assert_ne!(run.code, 0, "{path}: {}", run.stdout);
        assert!(!run.stdout.contains("5 lines") && !run.stdout.contains("1 lines"), "{path}");
        assert!(
            run.stderr.contains("outside the data directory") || run.stderr.contains("not found"),
            "{path}: unclear refusal: {}",
            run.stderr
        );
    }

    // Writes too: inside its root a tenant's job saves, outside it is refused and leaves nothing.
    let save = guest("save_text");
    let save = save.to_str().unwrap();
    let run = as_token(&c, &acme, &["submit"], &[save, "--follow", "--", "out", "10"]);
    run.assert_ok();
    assert!(data.join("acme/out/part-00000").is_file(), "{}", run.stderr);
    let outside = data.join("globex/stolen-abs");
    for path in ["../globex/stolen", outside.to_str().unwrap(), "../stolen"] {
        let run = as_token(&c, &acme, &["submit"], &[save, "--follow", "--", path, "10"]);
        assert_ne!(run.code, 0, "{path}");
        assert!(run.stderr.contains("outside the data directory"), "{path}: {}", run.stderr);
    }
    let globex_files: Vec<_> = std::fs::read_dir(data.join("globex")).unwrap().collect();
    assert_eq!(globex_files.len(), 1, "only globex's own file is there: {globex_files:?}");
    assert!(!data.join("stolen").exists());

    // Jobs: each tenant lists its own; another's id gets the answer of an id that is not there.
    let mine = job_ids(&c, &acme);
    assert!(!mine.is_empty() && mine.iter().all(|(_, t, _)| t == "acme"), "{mine:?}");
    assert!(job_ids(&c, &globex).is_empty());
    for command in [&["status"][..], &["logs"], &["cancel"]] {
        let theirs = as_token(&c, &globex, command, &[&acme_job]);
        let nobodys = as_token(&c, &globex, command, &["job-999999"]);
        assert_ne!(theirs.code, 0, "{command:?}: {}", theirs.stdout);
        assert_eq!(
            theirs.stderr.replace(&acme_job, "ID"),
            nobodys.stderr.replace("job-999999", "ID"),
            "{command:?}"
        );
    }
    // The log of an ended job, for its tenant.
    let logs = as_token(&c, &acme, &["logs"], &[&acme_job]);
    logs.assert_ok();
    assert!(logs.stdout.contains("3 lines"), "{}", logs.stdout);
    // The admin sees everyone's; tenants cannot manage tenants or see the cluster.
    assert!(job_ids(&c, &c.admin_token()).iter().any(|(id, _, _)| *id == acme_job));
    let run = as_token(&c, &initech, &["tenant", "list"], &[]);
    assert!(run.stderr.contains("needs the admin token"), "{}", run.stderr);
    let run = as_token(&c, &initech, &["status"], &[]);
    assert!(run.stderr.contains("needs the admin token"), "{}", run.stderr);

    // Modules by name: globex's private module is not there for acme, exactly as a name that
    // does not exist; made public, acme runs it, on acme's own data.
    let reader = guest("read_path");
    let reader = reader.to_str().unwrap();
    let pushed = as_token(&c, &globex, &["module", "push"], &["reader", reader]);
    pushed.assert_ok();
    assert!(pushed.stdout.starts_with("globex/reader@"), "{}", pushed.stdout);
    let theirs = as_token(&c, &acme, &["submit"], &["globex/reader", "--follow", "--", "mine.txt"]);
    let nobodys =
        as_token(&c, &acme, &["submit"], &["globex/nothing", "--follow", "--", "mine.txt"]);
    assert_ne!(theirs.code, 0);
    assert!(theirs.stderr.contains("no module globex/reader"), "{}", theirs.stderr);
    assert_eq!(theirs.stderr.replace("reader", "X"), nobodys.stderr.replace("nothing", "X"));
    let listed = as_token(&c, &acme, &["module", "list"], &["--json"]);
    assert_eq!(listed.stdout.trim(), "[]", "{}", listed.stdout);
    as_token(&c, &globex, &["module", "push"], &["reader", reader, "--public"]).assert_ok();
    let run = as_token(&c, &acme, &["submit"], &["globex/reader", "--follow", "--", "mine.txt"]);
    run.assert_ok();
    assert!(run.stdout.contains("3 lines"), "acme's data, read by globex's module: {}", run.stdout);
    let shown = as_token(&c, &acme, &["module", "show"], &["globex/reader"]);
    shown.assert_ok();
    assert!(shown.stdout.contains("public") && shown.stdout.contains("_start"), "{}", shown.stdout);

    // A rotated-away token is refused; the new one works; a deleted tenant's token too.
    let run = as_token(&c, &c.admin_token(), &["tenant", "rotate-token"], &["acme"]);
    run.assert_ok();
    let new = run.stdout.trim().to_string();
    let old = as_token(&c, &acme, &["jobs"], &[]);
    assert!(old.stderr.contains("invalid token"), "{}", old.stderr);
    assert!(!job_ids(&c, &new).is_empty());
    as_token(&c, &c.admin_token(), &["tenant", "delete"], &["initech"]).assert_ok();
    let run = as_token(&c, &initech, &["jobs"], &[]);
    assert!(run.stderr.contains("invalid token"), "{}", run.stderr);
    let run = as_token(&c, &c.admin_token(), &["tenant", "list"], &["--json"]);
    run.assert_ok();
    let listed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> =
        listed.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["acme", "globex"]);
    assert_eq!(listed[0]["limits"]["slots"], 2);
    // A new tenant may not take the deleted one's name, and with it its jobs and modules.
    let again = as_token(&c, &c.admin_token(), &["tenant", "create"], &["initech"]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("belonged to a deleted tenant"), "{}", again.stderr);
}

#[test]
fn a_coordinator_restart_keeps_tenants_and_history_and_fails_the_jobs_it_was_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Coordinator::start(dir.path());
    let _nodes = start_nodes(&c, dir.path(), 1);
    let acme = create_tenant(&c, "acme", &[]);
    std::fs::write(dir.path().join("data/acme/mine.txt"), "a\nb\n").unwrap();
    let run = read(&c, &acme, "mine.txt");
    run.assert_ok();
    let done = submitted_id(&run);
    let progress = |c: &Coordinator| {
        let run = as_token(c, &acme, &["status"], &["--json", &done]);
        run.assert_ok();
        let job: serde_json::Value = serde_json::from_str(&run.stdout).expect("status JSON");
        let j = &job[0];
        (j["stages"].clone(), j["tasks"].clone(), j["first_task_after_ms"].is_u64())
    };
    let before = progress(&c);
    assert!(before.0.as_u64().unwrap() >= 1 && before.1.as_u64().unwrap() >= 1, "{before:?}");
    assert!(before.2, "when its first task started is kept");
    // A job still running when the coordinator is killed.
    let module = guest("slow_action");
    let mut slow = Process::start(
        &[
            "submit",
            "--coordinator",
            &c.addr,
            "--token",
            &acme,
            module.to_str().unwrap(),
            "--follow",
            "--",
            "4000",
        ],
        dir.path().join("slow.log"),
    );
    slow.wait_for("submitted job-", JOIN);
    let running = slow
        .output()
        .lines()
        .find_map(|l| l.strip_prefix("submitted ").map(str::to_string))
        .unwrap();
    c.process.kill();
    slow.wait_exit(JOIN);
    c = Coordinator::restart(dir.path(), &c.addr.clone());
    // The node rejoins on its own, the tenant's token still works, the history is there.
    c.wait_for_nodes(1, Duration::from_secs(60));
    let jobs = job_ids(&c, &acme);
    assert!(jobs.contains(&(done.clone(), "acme".into(), "succeeded".into())), "{jobs:?}");
    assert!(jobs.contains(&(running.clone(), "acme".into(), "failed".into())), "{jobs:?}");
    let status = as_token(&c, &acme, &["status"], &[&running]);
    assert!(status.stdout.contains("coordinator restarted"), "{}", status.stdout);
    assert_eq!(progress(&c), before, "the stage and task counts survive the restart");
    let logs = as_token(&c, &acme, &["logs"], &[&done]);
    logs.assert_ok();
    assert!(logs.stdout.contains("2 lines"), "the kept log: {}", logs.stdout);
    // And a new job runs.
    let run = read(&c, &acme, "mine.txt");
    run.assert_ok();
    assert!(run.stdout.contains("2 lines"));
}
