//! What clients and the coordinator say about tenants: their caps, and how they are listed.
//!
//! A cap left out (`None`) is no cap: the cluster's own limits apply. A change names only the
//! fields it changes; `Some(None)` removes a cap.

use serde::{Deserialize, Serialize};

/// A tenant's caps and share.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TenantLimits {
    /// Most tasks the tenant runs at once over the whole cluster.
    pub slots: Option<u32>,
    /// Most jobs running at once; further jobs wait in a queue.
    pub max_running_jobs: Option<u32>,
    /// Most memory a job's tasks may ask for, MiB.
    pub memory_limit_mib: Option<u64>,
    /// Longest task timeout a job may ask for, seconds.
    pub task_timeout_secs: Option<u64>,
    /// Share of free slots against other tenants' (1 and up).
    pub weight: u32,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            slots: None,
            max_running_jobs: None,
            memory_limit_mib: None,
            task_timeout_secs: None,
            weight: 1,
        }
    }
}

/// A change of a tenant's caps, share or data directory: only the fields given change.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantChange {
    /// New slot cap (`Some(None)`: no cap).
    pub slots: Option<Option<u32>>,
    /// New running-jobs cap.
    pub max_running_jobs: Option<Option<u32>>,
    /// New memory cap, MiB.
    pub memory_limit_mib: Option<Option<u64>>,
    /// New task timeout cap, seconds.
    pub task_timeout_secs: Option<Option<u64>>,
    /// New weight.
    pub weight: Option<u32>,
    /// New data directory (an existing directory, as the coordinator sees it).
    pub data_dir: Option<String>,
}

impl TenantChange {
    /// `limits` with this change made.
    pub fn apply(&self, limits: &TenantLimits) -> TenantLimits {
        TenantLimits {
            slots: self.slots.unwrap_or(limits.slots),
            max_running_jobs: self.max_running_jobs.unwrap_or(limits.max_running_jobs),
            memory_limit_mib: self.memory_limit_mib.unwrap_or(limits.memory_limit_mib),
            task_timeout_secs: self.task_timeout_secs.unwrap_or(limits.task_timeout_secs),
            weight: self.weight.unwrap_or(limits.weight),
        }
    }
}

/// A tenant as `weft tenant list` shows it (never its token).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TenantInfo {
    /// Its name.
    pub name: String,
    /// Its caps and share.
    pub limits: TenantLimits,
    /// Its data root, as the coordinator sees it.
    pub data_dir: String,
    /// When it was created, seconds since the Unix epoch.
    pub created_unix: u64,
    /// Its jobs running now.
    pub running_jobs: u32,
    /// Its tasks running now.
    pub running_tasks: u32,
    /// The most tasks it ran at once since the coordinator started.
    pub peak_running_tasks: u32,
    /// Slot-seconds its tasks used since the coordinator started.
    pub slot_seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_touches_only_what_it_names_and_can_remove_a_cap() {
        let limits = TenantLimits { slots: Some(4), weight: 2, ..TenantLimits::default() };
        let change = TenantChange {
            slots: Some(None),
            memory_limit_mib: Some(Some(512)),
            ..TenantChange::default()
        };
        let changed = change.apply(&limits);
        assert_eq!(changed.slots, None);
        assert_eq!(changed.memory_limit_mib, Some(512));
        assert_eq!(changed.weight, 2);
        assert_eq!(TenantChange::default().apply(&limits), limits);
    }
}
