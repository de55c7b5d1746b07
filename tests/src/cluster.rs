//! Real cluster processes for tests: a coordinator and nodes on 127.0.0.1, killed when dropped.

use crate::weft_bin;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `weft` process whose output goes to a file; killed on drop.
pub struct Process {
    child: Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Process {
    /// Start `weft args...`, logging to `log`.
    pub fn start(args: &[&str], log: PathBuf) -> Process {
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(weft_bin())
            .args(args)
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("cannot start weft");
        Process { child, log }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until its output contains `needle`; panics with the output after `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.output().contains(needle) {
            assert!(
                start.elapsed() < timeout,
                "no {needle:?} within {timeout:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for it to exit; its exit code (-1 if killed by a signal), or `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// SIGKILL it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free UDP port on 127.0.0.1 (released again; fine for tests).
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A coordinator listening on a fresh port with its state in `dir/state` and its data directory
/// (shared with the nodes started through it) in `dir/data`.
pub struct Coordinator {
    /// The process.
    pub process: Process,
    /// Its address.
    pub addr: String,
    /// Its state directory.
    pub state: PathBuf,
}

impl Coordinator {
    /// Start one and wait until it listens.
    pub fn start(dir: &Path) -> Coordinator {
        Coordinator::start_with(dir, &[])
    }

    /// [`start`](Self::start) with more `weft coordinator` options.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Coordinator {
        Coordinator::start_at(dir, &format!("127.0.0.1:{}", free_port()), extra)
    }

    /// Start one again on the state of `dir` and the address it had (after a kill), so that
    /// its nodes find it again.
    pub fn restart(dir: &Path, addr: &str) -> Coordinator {
        Coordinator::start_at(dir, addr, &[])
    }

    fn start_at(dir: &Path, addr: &str, extra: &[&str]) -> Coordinator {
        std::fs::create_dir_all(dir).expect("coordinator directory");
        let addr = addr.to_string();
        let state = dir.join("state");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data directory");
        let mut args = vec![
            "coordinator",
            "--listen",
            &addr,
            "--state-dir",
            state.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let process = Process::start(&args, dir.join("coordinator.log"));
        process.wait_for("coordinator listening on", Duration::from_secs(20));
        Coordinator { process, addr, state }
    }

    /// The join token.
    pub fn join_token(&self) -> String {
        std::fs::read_to_string(self.state.join("join-token"))
            .expect("join-token")
            .trim()
            .to_string()
    }

    /// The admin token.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.state.join("admin-token"))
            .expect("admin-token")
            .trim()
            .to_string()
    }

    /// Run `weft <command> --coordinator ADDR --token ADMIN args...`.
    pub fn client(&self, command: &str, args: &[&str]) -> crate::Run {
        let token = self.admin_token();
        let mut all = vec![command, "--coordinator", &self.addr, "--token", &token];
        all.extend_from_slice(args);
        crate::weft(&all)
    }

    /// Run `weft <command…> --coordinator ADDR --token TOKEN args…` (a tenant's token, say).
    pub fn as_token(&self, token: &str, command: &[&str], args: &[&str]) -> crate::Run {
        let mut all: Vec<&str> = command.to_vec();
        all.extend(["--coordinator", &self.addr, "--token", token]);
        all.extend_from_slice(args);
        crate::weft(&all)
    }

    /// `weft tenant create NAME extra…` with the admin token; returns the tenant's token.
    pub fn create_tenant(&self, name: &str, extra: &[&str]) -> String {
        let mut args = vec![name];
        args.extend_from_slice(extra);
        let run = self.as_token(&self.admin_token(), &["tenant", "create"], &args);
        run.assert_ok();
        let token = run.stdout.trim().to_string();
        assert!(token.starts_with("weft-tenant-"), "{}", run.stdout);
        token
    }

    /// `weft status --json`: the nodes and the coordinator's counters.
    pub fn status(&self) -> Status {
        let run = self.client("status", &["--json"]);
        run.assert_ok();
        let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("status JSON");
        Status { json }
    }

    /// Wait until `nodes` nodes are alive; panics after `timeout`.
    pub fn wait_for_nodes(&self, nodes: usize, timeout: Duration) -> Status {
        let start = Instant::now();
        loop {
            let status = self.status();
            if status.alive() == nodes {
                return status;
            }
            assert!(start.elapsed() < timeout, "never saw {nodes} nodes alive: {}", status.json);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Start `weft submit --follow` of guest `module` with job `args` in the background, logging
    /// to `log` (for tests that act while the job runs).
    pub fn submit_in_background(&self, module: &str, args: &[&str], log: PathBuf) -> Process {
        let module = crate::guest(module);
        let token = self.admin_token();
        let mut all = vec!["submit", "--coordinator", &self.addr, "--token", &token];
        all.extend([module.to_str().unwrap(), "--follow", "--"]);
        all.extend_from_slice(args);
        Process::start(&all, log)
    }

    /// Start a node with `token` (see `Process::wait_for` / `wait_exit` for the outcome).
    pub fn node(&self, dir: &Path, name: &str, token: &str, slots: u32) -> Process {
        self.node_with(dir, name, token, slots, &[])
    }

    /// [`node`](Self::node) with more `weft node` options.
    pub fn node_with(
        &self,
        dir: &Path,
        name: &str,
        token: &str,
        slots: u32,
        extra: &[&str],
    ) -> Process {
        let data = dir.join("data");
        let work = dir.join(format!("work-{name}"));
        std::fs::create_dir_all(&data).unwrap();
        let slots = slots.to_string();
        let mut args = vec![
            "node",
            "--coordinator",
            &self.addr,
            "--join-token",
            token,
            "--slots",
            &slots,
            "--data-dir",
            data.to_str().unwrap(),
            "--work-dir",
            work.to_str().unwrap(),
            "--name",
            name,
        ];
        args.extend_from_slice(extra);
        Process::start(&args, dir.join(format!("{name}.log")))
    }
}

/// What `weft status --json` says.
pub struct Status {
    /// The whole answer.
    pub json: serde_json::Value,
}

impl Status {
    fn nodes(&self) -> &[serde_json::Value] {
        self.json["nodes"].as_array().map(Vec::as_slice).unwrap_or_default()
    }

    /// Nodes alive.
    pub fn alive(&self) -> usize {
        self.nodes().iter().filter(|n| n["alive"] == true).count()
    }

    /// Slots of the nodes alive.
    pub fn slots(&self) -> u64 {
        self.nodes().iter().filter(|n| n["alive"] == true).filter_map(|n| n["slots"].as_u64()).sum()
    }

    /// A counter of the coordinator.
    pub fn coordinator(&self, counter: &str) -> u64 {
        self.json["counters"][counter].as_u64().unwrap_or_else(|| panic!("no counter {counter}"))
    }

    /// A counter summed over every node.
    pub fn nodes_sum(&self, counter: &str) -> u64 {
        self.nodes().iter().filter_map(|n| n["counters"][counter].as_u64()).sum()
    }

    /// A counter of the node named `name` (`None` if there is no such node).
    pub fn node(&self, name: &str, counter: &str) -> Option<u64> {
        let node = self.nodes().iter().find(|n| n["name"] == name)?;
        node["counters"][counter].as_u64()
    }

    /// `(name, slots, counter)` of every node alive.
    pub fn per_node(&self, counter: &str) -> Vec<(String, u64, u64)> {
        self.nodes()
            .iter()
            .filter(|n| n["alive"] == true)
            .map(|n| {
                let name = n["name"].as_str().unwrap_or_default().to_string();
                let slots = n["slots"].as_u64().unwrap_or(0);
                (name, slots, n["counters"][counter].as_u64().unwrap_or(0))
            })
            .collect()
    }
}
