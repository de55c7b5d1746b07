//! The coordinator's operations behind one API type, [`CoordinatorApi`], whose methods take the
//! [`Principal`] a connection authenticated as. Transports are thin adapters: the QUIC service
//! (`cluster`) authenticates a connection once, then hands each request to [`handler::handle`],
//! which maps it onto these methods; an HTTP adapter would do the same. Nothing here knows about
//! sockets, so the request handling is tested in memory (`handler`).
//!
//! - `registry`, `nodes`: the node table, node links, the slot ledger, listeners;
//! - `jobs`: the job table behind the [`jobs::JobStore`] interface; `live`: logs and cancel
//!   flags of jobs while the coordinator runs;
//! - `modules`: content-addressed module storage; `named_modules`: the registry's names and
//!   versions over it;
//! - `tenant_ops`: tenants (admin only), and what a tenant may see;
//! - `submit`: checking, placing and starting (or queueing, `job_queue`) a job;
//! - `executor`: a job's tasks on the nodes; `run_job`: a job's driver on its own thread;
//!   `udf_catalog`: the registry as the catalog a job binds its UDFs from.

mod api;
mod executor;
pub mod handler;
pub mod job_queue;
pub mod jobs;
pub mod live;
mod modules;
mod named_modules;
pub mod nodes;
pub mod registry;
mod run_job;
mod submit;
mod tenant_ops;
mod udf_catalog;

pub use api::{ApiConfig, CoordinatorApi, JobFollower};
pub use executor::TASK_GRACE;
pub use submit::{JobAsk, job_policy};

/// Who a connection acts for, established once when it is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Holder of the admin token: sees and does everything.
    Admin,
    /// Holder of a tenant's token: sees and touches only that tenant's jobs and modules, and
    /// its jobs see only its data directory.
    Tenant(String),
    /// A node, by its id (its client certificate).
    Node(String),
}

impl Principal {
    /// How the principal is named to clients.
    pub fn name(&self) -> String {
        match self {
            Principal::Admin => "admin".into(),
            Principal::Tenant(name) => format!("tenant {name}"),
            Principal::Node(id) => id.clone(),
        }
    }
}

/// Why an operation was refused. `Display` is what the client is told.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The credentials are wrong, or the principal may not do this.
    #[error("{0}")]
    Denied(String),
    /// There is no such thing (or the principal may not know of it).
    #[error("{0}")]
    NotFound(String),
    /// The request is wrong as it stands.
    #[error("{0}")]
    Invalid(String),
    /// Something failed on the coordinator's side.
    #[error("{0}")]
    Internal(String),
}
