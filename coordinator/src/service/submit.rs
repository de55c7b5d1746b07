//! Submitting a job: [`CoordinatorApi::submit`]. Checks what the job asks for against its
//! tenant's caps, places it (the tenant's data directory, its share of slots), records it, and
//! starts its driver at once or queues it behind the tenant's running-jobs cap.

use super::api::CoordinatorApi;
use super::job_queue::Admission;
use super::jobs::{JobRecord, JobState};
use super::run_job::{self, JobPlace, QueuedJob};
use super::{ApiError, Principal};
use std::time::{Duration, SystemTime};
use weft_abi::limits::{MAX_JOB_ARGS, MAX_JOB_ARGS_BYTES};
use weft_sandbox::SandboxPolicy;
use weft_wire::protocol::JobEvent;
use weft_wire::tenancy::TenantLimits;

/// What a job asks for (`weft submit --memory-limit --task-timeout`); `None`: the tenant's cap,
/// or the coordinator's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobAsk {
    /// Memory a task may use, MiB.
    pub memory_limit_mib: Option<u64>,
    /// How long a task may run, seconds.
    pub task_timeout_secs: Option<u64>,
}

/// The sandbox policy of a job: what it asked for, else its tenant's cap, else the coordinator's
/// default. Asking more than the tenant's cap is refused, with the cap named.
pub fn job_policy(
    default: &SandboxPolicy,
    tenant: Option<(&str, &TenantLimits)>,
    ask: JobAsk,
) -> Result<SandboxPolicy, ApiError> {
    let mut policy = default.clone();
    let caps = tenant.map(|(_, l)| (l.memory_limit_mib, l.task_timeout_secs));
    let (memory_cap, timeout_cap) = caps.unwrap_or((None, None));
    let over = |what: &str, asked: u64, cap: u64, unit: &str| {
        let name = tenant.map_or("", |(n, _)| n);
        ApiError::Invalid(format!(
            "the job asks for {what} {asked} {unit}, above tenant {name}'s limit of {cap} {unit}"
        ))
    };
    if ask.memory_limit_mib == Some(0) || ask.task_timeout_secs == Some(0) {
        return Err(ApiError::Invalid(
            "--memory-limit and --task-timeout must be at least 1".into(),
        ));
    }
    match (ask.memory_limit_mib, memory_cap) {
        (Some(asked), Some(cap)) if asked > cap => {
            return Err(over("--memory-limit", asked, cap, "MiB"));
        }
        (Some(mib), _) | (None, Some(mib)) => policy.memory_limit = mib << 20,
        (None, None) => {}
    }
    match (ask.task_timeout_secs, timeout_cap) {
        (Some(asked), Some(cap)) if asked > cap => {
            return Err(over("--task-timeout", asked, cap, "s"));
        }
        (Some(secs), _) | (None, Some(secs)) => policy.task_timeout = Duration::from_secs(secs),
        (None, None) => {}
    }
    Ok(policy)
}

impl CoordinatorApi {
    /// Start (or queue) a job of a stored module (blocking: compiles the module if needed);
    /// returns its id.
    pub fn submit(
        &self,
        p: &Principal,
        hash: &str,
        args: Vec<String>,
        ask: JobAsk,
    ) -> Result<String, ApiError> {
        let tenant = self.client(p)?.map(str::to_string);
        let bytes: usize = args.iter().map(String::len).sum();
        if args.len() > MAX_JOB_ARGS || bytes > MAX_JOB_ARGS_BYTES {
            return Err(ApiError::Invalid(format!(
                "a job takes at most {MAX_JOB_ARGS} arguments of {MAX_JOB_ARGS_BYTES} bytes in all \
                 ({} arguments, {bytes} bytes given)",
                args.len()
            )));
        }
        let resolved;
        let hash = if hash.contains('/') {
            // A name of the registry: the tenant's own or a public one (checked there).
            resolved = self.resolve_module(p, hash)?;
            resolved.as_str()
        } else {
            if tenant.is_some() && !self.has_module(p, hash)? {
                // The same answer as for bytes nobody uploaded: no word of other tenants'.
                return Err(ApiError::NotFound(format!("no module {hash}: upload it first")));
            }
            hash
        };
        let limits = tenant.as_deref().map(|n| self.tenant_record(n).map(|r| r.limits));
        let limits = limits.transpose()?;
        let named = tenant.as_deref().zip(limits.as_ref());
        let policy = job_policy(&self.config.policy, named, ask)?;
        let place = match &tenant {
            None => JobPlace { storage: self.env.storage.clone(), data_root: None, tenant: None },
            Some(name) => self.tenant_place(name)?,
        };
        let module = self
            .modules
            .compiled(&self.engine, hash)
            .map_err(ApiError::Invalid)?
            .with_policy(policy);
        module.require_job().map_err(|e| ApiError::Invalid(e.to_string()))?;
        let (id, seq) = self.jobs.next_id().map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut record = JobRecord {
            id: id.clone(),
            seq,
            tenant: tenant.clone(),
            module_hash: hash.to_string(),
            args: args.clone(),
            state: JobState::Running,
            error: None,
            waiting: None,
            submitted: SystemTime::now(),
            ended: None,
            progress: Default::default(),
        };
        self.jobs.insert(record.clone()).map_err(|e| ApiError::Internal(e.to_string()))?;
        let live = self.live.add(&id);
        let job = QueuedJob { live: live.clone(), module, args, place };
        let (Some(name), Some(limits)) = (&tenant, &limits) else {
            return self.started(&id, job);
        };
        let mut shares = self.pool.ledger();
        shares.shares().set_tenant(name, limits.weight, limits.slots);
        shares.shares().set_job_tenant(&id, name);
        drop(shares);
        let already = self.env.queue.set_cap(name, limits.max_running_jobs);
        run_job::start_queued(&self.env, already);
        match self.env.queue.admit(name, &id, job) {
            Admission::Start(job) => self.started(&id, job),
            Admission::Queued { ahead, running, cap } => {
                let why = format!(
                    "tenant {name} runs {running} of at most {cap} job(s) at once; {ahead} \
                     queued job(s) ahead of this one"
                );
                record.state = JobState::Queued;
                record.waiting = Some(why.clone());
                self.jobs.insert(record).map_err(|e| ApiError::Internal(e.to_string()))?;
                live.push(JobEvent::Progress(format!("queued: {why}")));
                tracing::info!(job = %id, tenant = %name, "job queued");
                Ok(id)
            }
        }
    }

    fn started(&self, id: &str, job: QueuedJob) -> Result<String, ApiError> {
        match run_job::start_or_fail(&self.env, job) {
            None => Ok(id.to_string()),
            Some(error) => Err(ApiError::Internal(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_gets_what_it_asks_within_its_tenants_caps_or_is_refused_naming_the_cap() {
        let default = SandboxPolicy::default();
        let caps = TenantLimits {
            memory_limit_mib: Some(512),
            task_timeout_secs: Some(60),
            ..TenantLimits::default()
        };
        let tenant = Some(("acme", &caps));
        let p = job_policy(&default, tenant, JobAsk::default()).unwrap();
        assert_eq!((p.memory_limit, p.task_timeout), (512 << 20, Duration::from_secs(60)));
        let ask = JobAsk { memory_limit_mib: Some(256), task_timeout_secs: Some(5) };
        let p = job_policy(&default, tenant, ask).unwrap();
        assert_eq!((p.memory_limit, p.task_timeout), (256 << 20, Duration::from_secs(5)));
        let ask = JobAsk { memory_limit_mib: Some(1024), ..JobAsk::default() };
        let e = job_policy(&default, tenant, ask).unwrap_err().to_string();
        assert!(e.contains("--memory-limit 1024 MiB") && e.contains("acme's limit of 512"), "{e}");
        let ask = JobAsk { task_timeout_secs: Some(61), ..JobAsk::default() };
        let e = job_policy(&default, tenant, ask).unwrap_err().to_string();
        assert!(e.contains("--task-timeout 61 s") && e.contains("limit of 60 s"), "{e}");
        // Without caps, the coordinator's default, or whatever the job asks.
        let p = job_policy(&default, None, JobAsk::default()).unwrap();
        assert_eq!((p.memory_limit, p.task_timeout), (default.memory_limit, default.task_timeout));
        let ask = JobAsk { memory_limit_mib: Some(4096), ..JobAsk::default() };
        assert_eq!(job_policy(&default, None, ask).unwrap().memory_limit, 4096 << 20);
        let zero = JobAsk { task_timeout_secs: Some(0), ..JobAsk::default() };
        assert!(job_policy(&default, None, zero).is_err());
    }
}
