//! The limits shared by `weft run` and `weft coordinator`: the sandbox's, and what an action may
//! return to its driver.

use std::time::Duration;
use weft_sandbox::SandboxPolicy;

/// `--task-timeout` and `--memory-limit`.
#[derive(clap::Args)]
pub struct LimitArgs {
    /// Seconds one task may run before it is stopped; also each driver's budget for its own code
    /// (time spent waiting for actions does not count).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    task_timeout: u64,
    /// Memory one sandbox may use, in MiB (at most 4096, the wasm32 limit).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..=4096))]
    memory_limit: u64,
    /// Most MiB of results one action may return to the driver (`collect` of everything, say);
    /// an action over it fails at once with that cause.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    max_result_size: u64,
}

impl LimitArgs {
    /// The sandbox policy these options describe.
    pub fn policy(&self) -> SandboxPolicy {
        let timeout = Duration::from_secs(self.task_timeout);
        SandboxPolicy {
            task_timeout: timeout,
            driver_timeout: timeout,
            memory_limit: self.memory_limit << 20,
            ..SandboxPolicy::default()
        }
    }

    /// Most bytes of results one action may return to the driver.
    pub fn result_limit(&self) -> u64 {
        self.max_result_size << 20
    }
}
