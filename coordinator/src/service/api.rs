//! [`CoordinatorApi`]: every operation of the coordinator, for a principal.
//!
//! Methods that read or write files, or compile, say so ("blocking"): async callers run them on
//! blocking threads.

use super::jobs::{JobRecord, JobState, JobStore};
use super::live::{LiveJob, LiveJobs};
use super::modules::ModuleStore;
use super::nodes::{NodeLink, NodePool};
use super::run_job::{self, JobEnv};
use super::{ApiError, Principal};
use crate::slots::MAX_NODE_SLOTS;
use crate::state::StateDb;
use crate::state::job_table::DbJobStore;
use crate::state::module_names::ModuleNames;
use crate::state::module_owners::ModuleOwners;
use crate::state::tenants::TenantTable;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use weft_sandbox::{Engine, ModuleCache, SandboxPolicy};
use weft_storage::{DataDir, Storage};
use weft_wire::pki::{ClusterPki, fingerprint, secrets_match};
use weft_wire::protocol::{Counters, JobEvent, JobInfo, NodeInfo};

/// How the coordinator is set up.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where the CA, tokens, the state database, modules and compiled modules are kept.
    pub state_dir: PathBuf,
    /// Where the admin's jobs' paths are resolved, and tenants' data directories are made by
    /// default.
    pub data_dir: PathBuf,
    /// Sandbox limits of every job.
    pub policy: SandboxPolicy,
    /// Most bytes of results one action may return to its driver.
    pub result_limit: u64,
}

/// The coordinator's state and operations.
pub struct CoordinatorApi {
    pki: ClusterPki,
    pub(super) pool: Arc<NodePool>,
    pub(super) modules: ModuleStore,
    pub(super) jobs: Arc<dyn JobStore>,
    tenants: TenantTable,
    owners: ModuleOwners,
    names: ModuleNames,
    pub(super) live: Arc<LiveJobs>,
    pub(super) engine: Engine,
    pub(super) config: ApiConfig,
    counters: Mutex<Counters>,
    /// What drivers of jobs are started with.
    pub(super) env: JobEnv,
    /// What UDF modules declare, by hash.
    pub(super) signatures: super::udf_catalog::SignatureCache,
}

/// Longest node name accepted at join.
const MAX_NODE_NAME: usize = 256;

fn denied(what: &str) -> ApiError {
    ApiError::Denied(what.to_string())
}

impl CoordinatorApi {
    /// Load (or create) the state in `config.state_dir` (blocking). Tasks are spawned on
    /// `runtime`.
    pub fn open(
        config: ApiConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Arc<CoordinatorApi>, ApiError> {
        let internal = |e: String| ApiError::Internal(e);
        let pki =
            ClusterPki::load_or_create(&config.state_dir).map_err(|e| internal(e.to_string()))?;
        let data = DataDir::new(&config.data_dir).map_err(|e| internal(e.to_string()))?;
        let modules = ModuleStore::new(config.state_dir.join("modules"))
            .map_err(|e| internal(format!("module store: {e}")))?;
        let compiled = ModuleCache::open(&config.state_dir.join("compiled")).map_err(internal)?;
        let engine =
            Engine::new().map_err(|e| internal(e.to_string()))?.with_module_cache(compiled);
        let db = StateDb::open(&config.state_dir).map_err(|e| internal(e.to_string()))?;
        let jobs = DbJobStore::open(db.clone(), Some(&config.state_dir))
            .map_err(|e| internal(e.to_string()))?;
        let storage: Arc<dyn Storage> = Arc::new(data);
        let jobs: Arc<dyn JobStore> = Arc::new(jobs);
        let result_limit = config.result_limit;
        let env = move |api: &std::sync::Weak<CoordinatorApi>| JobEnv {
            api: api.clone(),
            pool: Arc::default(),
            jobs: jobs.clone(),
            live: Arc::default(),
            storage,
            runtime,
            result_limit,
            queue: Arc::default(),
        };
        // Drivers find the registry (their UDFs) through the API they were started by.
        Ok(Arc::new_cyclic(|api| {
            let env = env(api);
            CoordinatorApi {
                pki,
                pool: env.pool.clone(),
                modules,
                jobs: env.jobs.clone(),
                tenants: TenantTable::new(db.clone()),
                owners: ModuleOwners::new(db.clone()),
                names: ModuleNames::new(db),
                live: env.live.clone(),
                engine,
                config,
                counters: Mutex::default(),
                env,
                signatures: Default::default(),
            }
        }))
    }

    /// The cluster's PKI (for the transport's TLS set-up).
    pub fn pki(&self) -> &ClusterPki {
        &self.pki
    }

    /// The job history.
    pub(super) fn job_store(&self) -> &Arc<dyn JobStore> {
        &self.jobs
    }

    /// The tenants.
    pub(super) fn tenants(&self) -> &TenantTable {
        &self.tenants
    }

    /// The registry's names.
    pub(super) fn names(&self) -> &ModuleNames {
        &self.names
    }

    /// The coordinator's data directory.
    pub(super) fn data_root(&self) -> &Path {
        &self.config.data_dir
    }

    /// The principal a token secret stands for (blocking: reads the database).
    pub fn authenticate(&self, secret: &str) -> Result<Principal, ApiError> {
        if secrets_match(secret, &self.pki.admin_token.secret) {
            return Ok(Principal::Admin);
        }
        match self.tenant_for_secret(secret)? {
            Some(name) => Ok(Principal::Tenant(name)),
            None => Err(denied("invalid token (wrong, revoked or replaced by a newer one)")),
        }
    }

    /// The principal a client certificate stands for: a node that joined.
    pub fn node_principal(&self, cert_fingerprint: &str) -> Option<Principal> {
        self.pool.node_for_cert(cert_fingerprint).map(Principal::Node)
    }

    /// A node asks to join with the join token's secret: sign its certificate request. Returns
    /// its id, its certificate and the CA certificate (PEM).
    pub fn join(
        &self,
        secret: &str,
        name: &str,
        csr_pem: &str,
    ) -> Result<(String, String, String), ApiError> {
        if !secrets_match(secret, &self.pki.join_token.secret) {
            return Err(denied("invalid join token"));
        }
        if name.len() > MAX_NODE_NAME {
            return Err(ApiError::Invalid(format!("node names are at most {MAX_NODE_NAME} bytes")));
        }
        let cert_pem = self
            .pki
            .sign_node_csr(csr_pem)
            .map_err(|e| ApiError::Invalid(format!("cannot sign the certificate request: {e}")))?;
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| ApiError::Internal("the signed certificate does not parse".into()))?;
        let id = self
            .pool
            .joined(name, fingerprint(&cert), Instant::now())
            .ok_or_else(|| ApiError::Denied("the cluster has too many nodes".into()))?;
        Ok((id, cert_pem, self.pki.ca_pem().to_string()))
    }

    fn node_id<'p>(&self, p: &'p Principal, what: &str) -> Result<&'p str, ApiError> {
        match p {
            Principal::Node(id) => Ok(id),
            _ => Err(ApiError::Denied(format!(
                "{what} requires the node certificate issued at join"
            ))),
        }
    }

    pub(super) fn admin(&self, p: &Principal) -> Result<(), ApiError> {
        match p {
            Principal::Admin => Ok(()),
            _ => Err(denied("this needs the admin token")),
        }
    }

    /// The admin or a tenant that still exists: who may upload, submit and see jobs. Returns
    /// the tenant, if it is one.
    pub(super) fn client<'p>(&self, p: &'p Principal) -> Result<Option<&'p str>, ApiError> {
        match p {
            Principal::Admin => Ok(None),
            Principal::Tenant(name) => {
                self.tenant_record(name)?;
                Ok(Some(name))
            }
            Principal::Node(_) => Err(denied("this needs an admin or tenant token")),
        }
    }

    /// A node announces its slots; tasks reach it through `link`.
    pub fn register(
        &self,
        p: &Principal,
        slots: u32,
        shuffle_addr: String,
        link: Arc<dyn NodeLink>,
    ) -> Result<String, ApiError> {
        let id = self.node_id(p, "registering")?;
        if slots == 0 || slots > MAX_NODE_SLOTS {
            return Err(ApiError::Invalid(format!(
                "a node offers 1 to {MAX_NODE_SLOTS} slots, not {slots}"
            )));
        }
        if !self.pool.register(id, slots, shuffle_addr, link, Instant::now()) {
            return Err(ApiError::NotFound(format!("{id} is not a node of this cluster any more")));
        }
        tracing::info!(node_id = %id, slots, "node registered");
        Ok(id.to_string())
    }

    /// A node is alive.
    pub fn heartbeat(&self, p: &Principal, counters: Counters) -> Result<(), ApiError> {
        let id = self.node_id(p, "heartbeats")?;
        if self.pool.heartbeat(id, counters, Instant::now()) {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("{id} is not a node of this cluster any more")))
        }
    }

    /// A module's bytes, for a node (blocking).
    pub fn fetch_module(&self, p: &Principal, hash: &str) -> Result<Arc<Vec<u8>>, ApiError> {
        self.node_id(p, "fetching modules")?;
        let bytes = self
            .modules
            .get(hash)
            .ok_or_else(|| ApiError::NotFound(format!("unknown module {hash}")))?;
        self.counters.lock().unwrap_or_else(|e| e.into_inner()).module_bytes_sent +=
            bytes.len() as u64;
        Ok(bytes)
    }

    /// A broadcast value of a running job, by hash, for a node.
    pub fn fetch_broadcast(
        &self,
        p: &Principal,
        job: &str,
        hash: &str,
    ) -> Result<bytes::Bytes, ApiError> {
        self.node_id(p, "fetching broadcasts")?;
        let bytes = self
            .live
            .get(job)
            .and_then(|j| j.broadcasts.by_hash(hash))
            .ok_or_else(|| ApiError::NotFound(format!("job {job} has no broadcast {hash}")))?;
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.broadcast_bytes += bytes.len() as u64;
        c.broadcasts_fetched += 1;
        Ok(bytes)
    }

    /// The nodes and the coordinator's counters.
    pub fn cluster_status(&self, p: &Principal) -> Result<(Vec<NodeInfo>, Counters), ApiError> {
        self.admin(p)?;
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok((self.pool.status(Instant::now()), counters))
    }

    /// Whether a module is stored, for `p`: a tenant is told only of modules it uploaded itself
    /// (blocking).
    pub fn has_module(&self, p: &Principal, hash: &str) -> Result<bool, ApiError> {
        Ok(match self.client(p)? {
            None => self.modules.has(hash),
            Some(tenant) => {
                self.modules.has(hash)
                    && self
                        .owners
                        .owns(hash, tenant)
                        .map_err(|e| ApiError::Internal(e.to_string()))?
            }
        })
    }

    /// Store a module (blocking). Bytes stored already are not stored again; a tenant becomes
    /// one of the module's owners.
    pub fn upload_module(&self, p: &Principal, hash: &str, wasm: Vec<u8>) -> Result<(), ApiError> {
        let tenant = self.client(p)?;
        self.modules.put(hash, wasm).map_err(ApiError::Invalid)?;
        if let Some(tenant) = tenant {
            self.owners.add(hash, tenant).map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        Ok(())
    }

    /// A job `p` may see; another tenant's job is "no job", as one that does not exist.
    pub(super) fn record(&self, p: &Principal, id: &str) -> Result<JobRecord, ApiError> {
        self.client(p)?;
        self.jobs
            .get(id)
            .filter(|j| Self::may_see(p, j))
            .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))
    }

    /// Every job kept that `p` may see, oldest first.
    pub fn jobs(&self, p: &Principal) -> Result<Vec<JobInfo>, ApiError> {
        self.client(p)?;
        let now = SystemTime::now();
        Ok(self
            .jobs
            .list()
            .iter()
            .filter(|j| Self::may_see(p, j))
            .map(|j| self.info(j, now))
            .collect())
    }

    /// One job.
    pub fn job(&self, p: &Principal, id: &str) -> Result<JobInfo, ApiError> {
        Ok(self.info(&self.record(p, id)?, SystemTime::now()))
    }

    /// A job as listed: an ended one as recorded, a running one with its live progress.
    fn info(&self, record: &JobRecord, now: SystemTime) -> JobInfo {
        let live = match record.state.is_over() {
            true => None,
            false => self.live.get(&record.id).map(|j| j.progress()),
        };
        record.info(now, live.unwrap_or(record.progress))
    }

    /// Stop a job: its running action fails, and no later one starts; a queued job leaves the
    /// queue and ends at once.
    pub fn cancel(&self, p: &Principal, id: &str) -> Result<JobInfo, ApiError> {
        let record = self.record(p, id)?;
        if let Some(queued) = self.env.queue.remove(id) {
            let error = Some(run_job::CANCELLED.to_string());
            let finished = JobEvent::Finished { exit_code: 1, error: error.clone() };
            let mut kept = queued.live.log().since(0).0;
            kept.push(finished.clone());
            let progress = queued.live.progress();
            let _ = self.jobs.finish_with_log(id, JobState::Cancelled, error, progress, kept);
            queued.live.push(finished);
            self.pool.ledger().shares().forget_job(id);
            self.live.ended(id);
            tracing::info!(job = %id, "queued job cancelled");
            let record = self.jobs.get(id).unwrap_or(record);
            return Ok(self.info(&record, SystemTime::now()));
        }
        if let Some(job) = self.live.get(id) {
            job.cancel();
            tracing::info!(job = %id, "job cancelled");
        }
        Ok(self.info(&record, SystemTime::now()))
    }

    /// Follow a job's log from its start: live while the coordinator holds it, else the last
    /// MiB kept in the state database when the job ended.
    pub fn follow(&self, p: &Principal, id: &str) -> Result<JobFollower, ApiError> {
        self.record(p, id)?;
        let job = match self.live.get(id) {
            Some(job) => job,
            None => {
                let saved = self
                    .jobs
                    .saved_log(id)
                    .ok_or_else(|| ApiError::NotFound(format!("the log of {id} is not kept")))?;
                let job = Arc::new(LiveJob::new(id));
                for event in saved {
                    job.push(event);
                }
                job
            }
        };
        Ok(JobFollower { job, next: 0 })
    }

    /// A node's connection ended: it is lost now (its tasks fail and are retried, its map
    /// outputs count as lost).
    pub fn node_disconnected(&self, id: &str, connection: u64) {
        if self.pool.disconnected(id, connection) {
            tracing::warn!(node_id = %id, "node lost: its connection closed");
        }
    }

    /// Close the links of nodes that stopped heartbeating (their tasks fail and are retried,
    /// their map outputs count as lost).
    pub fn reap_lost_nodes(&self) {
        for id in self.pool.reap(Instant::now()) {
            tracing::warn!(node_id = %id, "node lost: no heartbeat for {:?}", super::registry::NODE_TIMEOUT);
        }
    }
}

/// A follower of one job's log.
pub struct JobFollower {
    job: Arc<LiveJob>,
    next: u64,
}

impl JobFollower {
    /// The next events, waiting until there are some; after the job's end, nothing more.
    pub async fn next(&mut self) -> Vec<JobEvent> {
        loop {
            let notified = self.job.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (mut events, next, skipped) = self.job.log().since(self.next);
            self.next = next;
            if skipped > 0 {
                let note = format!(
                    "[weft: {skipped} earlier log event(s) were dropped: the log keeps its last MiB]\n"
                );
                events.insert(0, JobEvent::Stderr(note.into_bytes()));
            }
            if !events.is_empty() {
                return events;
            }
            if self.job.log().ended() {
                return Vec::new();
            }
            notified.await;
        }
    }
}
