//! Running an engine as a child process and measuring it: wall time from spawn to exit and the
//! peak memory of the whole process tree.
//!
//! Memory is sampled, not read from `getrusage`: PySpark is a Python driver, a JVM and Python
//! worker processes, and `ru_maxrss` reports only the largest single process, not their sum.
//! Every [`SAMPLE_EVERY`] the sampler walks `/proc`, finds the descendants of the watched
//! processes and adds up their resident memory. A peak shorter than the interval can be missed;
//! the interval is a compromise with the sampler's own CPU use on a 2-core machine.

use anyhow::{Context as _, bail};
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the process tree's memory is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// What one run of a command produced.
#[derive(Debug, Clone)]
pub struct Measured {
    /// From spawn to exit.
    pub wall: Duration,
    /// The largest sum of resident memory over the process tree(s) seen, in bytes.
    pub peak_rss: u64,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Run `cmd` to completion; fails (with its stderr) when it exits unsuccessfully. Besides the
/// command's own tree, the trees of `also_watch` (e.g. a running cluster's processes) count
/// towards the peak memory.
pub fn run(cmd: &mut Command, also_watch: &[u32]) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let mut roots = vec![child.id()];
    roots.extend_from_slice(also_watch);
    let sampler = Sampler::start(roots);
    let out = child.wait_with_output()?;
    let wall = started.elapsed();
    let peak_rss = sampler.stop();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{:?} failed ({}):\n{}", cmd.get_program(), out.status, tail.join("\n"));
    }
    Ok(Measured { wall, peak_rss, stdout, stderr })
}

/// A thread sampling the memory of some process trees until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(roots: Vec<u32>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(tree_rss(&roots), Ordering::Relaxed);
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        Sampler { stop, peak, thread }
    }

    /// Stop sampling; the peak in bytes.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}

/// Resident bytes of `roots` and all their descendants.
fn tree_rss(roots: &[u32]) -> u64 {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut rss: HashMap<u32, u64> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit between listing and reading: skip it.
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        if let Some((ppid, bytes)) = parse_status(&status) {
            children.entry(ppid).or_default().push(pid);
            rss.insert(pid, bytes);
        }
    }
    let mut seen = HashSet::new();
    let mut stack: Vec<u32> = roots.to_vec();
    let mut total = 0;
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        total += rss.get(&pid).copied().unwrap_or(0);
        stack.extend(children.get(&pid).into_iter().flatten().copied());
    }
    total
}

/// Parent pid and resident bytes from `/proc/PID/status` (kernel threads have no `VmRSS`).
fn parse_status(status: &str) -> Option<(u32, u64)> {
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().trim_end_matches(" kB"))
    };
    let ppid = field("PPid:")?.parse().ok()?;
    let kib: u64 = field("VmRSS:").and_then(|v| v.parse().ok()).unwrap_or(0);
    Some((ppid, kib * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let status = "Name:\tjava\nPid:\t10\nPPid:\t7\nVmPeak:\t  900 kB\nVmRSS:\t  321 kB\n";
        assert_eq!(parse_status(status), Some((7, 321 * 1024)));
        assert_eq!(parse_status("Name:\tkthreadd\nPPid:\t0\n"), Some((0, 0)));
    }

    #[test]
    fn measures_a_child_and_its_children() {
        // A shell whose child shell holds a 64 MiB string: the tree's peak must include it.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sh -c 'x=$(head -c 67108864 /dev/zero | tr \"\\0\" a); sleep 0.5'"]);
        let m = run(&mut cmd, &[]).expect("runs");
        assert!(m.peak_rss > 60 << 20, "peak {} bytes misses the child", m.peak_rss);
        assert!(m.wall >= Duration::from_millis(500));
    }

    #[test]
    fn a_failing_command_is_an_error_with_its_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"]), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("boom"), "{err:#}");
    }
}
