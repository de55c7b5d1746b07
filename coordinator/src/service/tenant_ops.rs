//! The tenant operations of [`CoordinatorApi`] (admin only), and what a tenant principal may
//! see of jobs and modules.
//!
//! A tenant's token is `weft-tenant-<secret>-<CA fingerprint>`: like the admin token it pins
//! the coordinator's CA, and only the SHA-256 of the secret is stored. It is shown once, by
//! `create` and `rotate_token`.

use super::api::CoordinatorApi;
use super::jobs::{JobRecord, JobState};
use super::run_job::JobPlace;
use super::{ApiError, Principal};
use crate::state::tenants::{TenantError, TenantRecord, check_name, token_hash};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use weft_storage::DataDir;
use weft_wire::pki::{Token, TokenKind, random_secret};
use weft_wire::tenancy::{TenantChange, TenantInfo, TenantLimits};

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::NotFound(_) => ApiError::NotFound(e.to_string()),
            TenantError::Exists(_) | TenantError::Retired(_) | TenantError::Invalid(_) => {
                ApiError::Invalid(e.to_string())
            }
            TenantError::State(e) => ApiError::Internal(e.to_string()),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// An existing directory, canonical, as text.
fn existing_dir(dir: &str) -> Result<String, ApiError> {
    let path = Path::new(dir);
    if !path.is_absolute() {
        return Err(ApiError::Invalid(format!(
            "--data-dir {dir}: give an absolute path (as the coordinator and nodes see it)"
        )));
    }
    let real =
        path.canonicalize().map_err(|e| ApiError::Invalid(format!("--data-dir {dir}: {e}")))?;
    if !real.is_dir() {
        return Err(ApiError::Invalid(format!("--data-dir {dir}: not a directory")));
    }
    real.to_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError::Invalid(format!("--data-dir {dir}: not UTF-8")))
}

impl CoordinatorApi {
    fn new_token(&self) -> Result<(String, String), ApiError> {
        let secret = random_secret().map_err(internal)?;
        let token = Token {
            kind: TokenKind::Tenant,
            secret: secret.clone(),
            ca_fingerprint: self.pki().admin_token.ca_fingerprint.clone(),
        };
        Ok((token.to_text(), token_hash(&secret)))
    }

    fn tenant_info(&self, t: TenantRecord) -> TenantInfo {
        let running = self
            .job_store()
            .list()
            .iter()
            .filter(|j| j.state == JobState::Running && j.tenant.as_deref() == Some(&t.name))
            .count() as u32;
        let (tasks, peak, slot_seconds) =
            self.pool.ledger().shares().tenant_usage(&t.name, std::time::Instant::now());
        TenantInfo {
            name: t.name,
            limits: t.limits,
            data_dir: t.data_dir,
            created_unix: t
                .created
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            running_jobs: running,
            running_tasks: tasks,
            peak_running_tasks: peak,
            slot_seconds,
        }
    }

    /// The tenant a secret belongs to, if any (blocking: reads the database).
    pub(super) fn tenant_for_secret(&self, secret: &str) -> Result<Option<String>, ApiError> {
        Ok(self.tenants().by_token_hash(&token_hash(secret)).map_err(internal)?.map(|t| t.name))
    }

    /// A live tenant's record: a principal whose tenant was deleted is refused.
    pub(super) fn tenant_record(&self, name: &str) -> Result<TenantRecord, ApiError> {
        self.tenants()
            .get(name)
            .map_err(internal)?
            .ok_or_else(|| ApiError::Denied(format!("tenant {name} no longer exists")))
    }

    /// Where a tenant's job's paths lead: its data directory for the driver's planning, and the
    /// data root its tasks are told: the tenant's name when its directory is the default one
    /// inside the data directory (each node finds it inside its own), else the absolute path.
    pub(super) fn tenant_place(&self, name: &str) -> Result<JobPlace, ApiError> {
        let record = self.tenant_record(name)?;
        let storage = DataDir::new(&record.data_dir).map_err(|e| {
            ApiError::Internal(format!("tenant {name}'s data directory {}: {e}", record.data_dir))
        })?;
        let default = self.data_root().canonicalize().ok().map(|d| d.join(name));
        let data_root = if default.as_deref() == Some(Path::new(&record.data_dir)) {
            name.to_string()
        } else {
            record.data_dir.clone()
        };
        Ok(JobPlace {
            storage: Arc::new(storage),
            data_root: Some(data_root),
            tenant: Some(name.to_string()),
        })
    }

    /// Add a tenant; returns it and its token, shown this once (blocking).
    pub fn create_tenant(
        &self,
        p: &Principal,
        name: &str,
        limits: TenantLimits,
        data_dir: Option<String>,
    ) -> Result<(TenantInfo, String), ApiError> {
        self.admin(p)?;
        check_name(name)?;
        let data_dir = match data_dir {
            Some(dir) => existing_dir(&dir)?,
            None => {
                let dir: PathBuf = self.data_root().join(name);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    ApiError::Internal(format!("cannot create {}: {e}", dir.display()))
                })?;
                existing_dir(&dir.to_string_lossy())?
            }
        };
        let (token, hash) = self.new_token()?;
        let record = TenantRecord {
            name: name.to_string(),
            token_hash: hash,
            limits,
            data_dir,
            created: SystemTime::now(),
        };
        self.tenants().create(&record)?;
        tracing::info!(tenant = %name, "tenant created");
        Ok((self.tenant_info(record), token))
    }

    /// Every tenant.
    pub fn list_tenants(&self, p: &Principal) -> Result<Vec<TenantInfo>, ApiError> {
        self.admin(p)?;
        let tenants = self.tenants().list().map_err(internal)?;
        Ok(tenants.into_iter().map(|t| self.tenant_info(t)).collect())
    }

    /// Change a tenant's caps, share or data directory (blocking).
    pub fn update_tenant(
        &self,
        p: &Principal,
        name: &str,
        change: &TenantChange,
    ) -> Result<TenantInfo, ApiError> {
        self.admin(p)?;
        let dir = change.data_dir.as_deref().map(existing_dir).transpose()?;
        let record = self.tenants().update(name, change, dir)?;
        // Running jobs of the tenant get the new share and cap at once.
        self.pool.ledger().shares().set_tenant(name, record.limits.weight, record.limits.slots);
        let started = self.env.queue.set_cap(name, record.limits.max_running_jobs);
        super::run_job::start_queued(&self.env, started);
        tracing::info!(tenant = %name, "tenant updated");
        Ok(self.tenant_info(record))
    }

    /// A new token for a tenant; the old one stops working at once (blocking).
    pub fn rotate_tenant_token(&self, p: &Principal, name: &str) -> Result<String, ApiError> {
        self.admin(p)?;
        let (token, hash) = self.new_token()?;
        self.tenants().set_token_hash(name, hash)?;
        tracing::info!(tenant = %name, "tenant token rotated");
        Ok(token)
    }

    /// Remove a tenant: refused while it has running jobs. Its history and data directory stay
    /// (blocking).
    pub fn delete_tenant(&self, p: &Principal, name: &str) -> Result<TenantInfo, ApiError> {
        self.admin(p)?;
        let running = self
            .job_store()
            .list()
            .iter()
            .filter(|j| !j.state.is_over() && j.tenant.as_deref() == Some(name))
            .count();
        if running > 0 {
            return Err(ApiError::Invalid(format!(
                "tenant {name} has {running} running or queued job(s): cancel them first"
            )));
        }
        let record = self.tenants().delete(name)?;
        tracing::info!(tenant = %name, "tenant deleted");
        Ok(self.tenant_info(record))
    }

    /// Whether `p` may see `job`: the admin sees every job, a tenant its own.
    pub(super) fn may_see(p: &Principal, job: &JobRecord) -> bool {
        match p {
            Principal::Admin => true,
            Principal::Tenant(name) => job.tenant.as_deref() == Some(name.as_str()),
            Principal::Node(_) => false,
        }
    }
}
