//! Requests as they arrive, mapped onto [`CoordinatorApi`] for the connection's principal, and
//! answers as they leave. No sockets: the transport hands a decoded request in and sends what
//! comes back, so all of this is tested in memory (below).
//!
//! Operations that touch files or compile run on blocking threads, never on the async ones.

use super::api::{CoordinatorApi, JobFollower};
use super::nodes::NodeLink;
use super::{ApiError, Principal};
use std::sync::Arc;
use weft_wire::protocol::{Request, Response};

/// What to send back.
// One per request, moved once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// One response, and the stream ends.
    One(Response),
    /// A job's events, as long as it runs.
    Follow(JobFollower),
}

fn refused(e: ApiError) -> Response {
    Response::Refused { reason: e.to_string() }
}

fn one(result: Result<Response, ApiError>) -> Reply {
    Reply::One(result.unwrap_or_else(refused))
}

/// A request on a connection that has not authenticated. Only `Authenticate` and `Join` are
/// answered; a successful `Authenticate` returns the principal the connection acts as from now
/// on.
pub fn handle_anonymous(api: &CoordinatorApi, request: Request) -> (Response, Option<Principal>) {
    match request {
        Request::Authenticate { token_secret } => match api.authenticate(&token_secret) {
            Ok(principal) => {
                (Response::Authenticated { principal: principal.name() }, Some(principal))
            }
            Err(e) => (refused(e), None),
        },
        Request::Join { token_secret, name, csr_pem } => {
            match api.join(&token_secret, &name, &csr_pem) {
                Ok((node_id, cert_pem, ca_pem)) => {
                    tracing::info!(%node_id, %name, "node joined");
                    (Response::Joined { node_id, cert_pem, ca_pem }, None)
                }
                Err(e) => (refused(e), None),
            }
        }
        _ => (Response::Refused { reason: "authenticate first".into() }, None),
    }
}

/// Run `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::Internal(format!("internal error: {e}"))))
}

/// A request from an authenticated `principal`. `link` is how to reach the peer, for a node that
/// registers.
pub async fn handle(
    api: &Arc<CoordinatorApi>,
    principal: &Principal,
    request: Request,
    link: Option<Arc<dyn NodeLink>>,
) -> Reply {
    let p = principal.clone();
    match request {
        Request::Authenticate { .. } | Request::Join { .. } => Reply::One(Response::Refused {
            reason: "this connection is already authenticated".into(),
        }),
        Request::Register { slots, shuffle_addr } => {
            let Some(link) = link else {
                return one(Err(ApiError::Denied("only a node's connection can register".into())));
            };
            one(api
                .register(&p, slots, shuffle_addr, link)
                .map(|node_id| Response::Registered { node_id }))
        }
        Request::Heartbeat { counters, .. } => {
            one(api.heartbeat(&p, counters).map(|()| Response::Ack))
        }
        Request::FetchModule { hash } => {
            let api = api.clone();
            one(blocking(move || api.fetch_module(&p, &hash))
                .await
                .map(|b| Response::Module(b.to_vec())))
        }
        Request::FetchBroadcast { job, hash } => {
            one(api.fetch_broadcast(&p, &job, &hash).map(|b| Response::Broadcast(b.to_vec())))
        }
        Request::ClusterStatus => one(api
            .cluster_status(&p)
            .map(|(nodes, counters)| Response::ClusterStatus { nodes, counters })),
        Request::HasModule { hash } => {
            let api = api.clone();
            one(blocking(move || api.has_module(&p, &hash))
                .await
                .map(|present| Response::ModuleStatus { present }))
        }
        Request::UploadModule { hash, wasm } => {
            let api = api.clone();
            one(blocking(move || api.upload_module(&p, &hash, wasm))
                .await
                .map(|()| Response::ModuleStored))
        }
        Request::Submit { hash, args, memory_limit_mib, task_timeout_secs } => {
            let api = api.clone();
            let ask = super::JobAsk { memory_limit_mib, task_timeout_secs };
            one(blocking(move || api.submit(&p, &hash, args, ask))
                .await
                .map(|job_id| Response::Submitted { job_id }))
        }
        Request::CreateTenant { name, limits, data_dir } => {
            let api = api.clone();
            one(blocking(move || api.create_tenant(&p, &name, limits, data_dir))
                .await
                .map(|(info, token)| Response::TenantToken { name: info.name, token }))
        }
        Request::ListTenants => {
            let api = api.clone();
            one(blocking(move || api.list_tenants(&p)).await.map(Response::Tenants))
        }
        Request::UpdateTenant { name, change } => {
            let api = api.clone();
            one(blocking(move || api.update_tenant(&p, &name, &change))
                .await
                .map(|t| Response::Tenants(vec![t])))
        }
        Request::DeleteTenant { name } => {
            let api = api.clone();
            one(blocking(move || api.delete_tenant(&p, &name))
                .await
                .map(|t| Response::Tenants(vec![t])))
        }
        Request::RotateTenantToken { name } => {
            let api = api.clone();
            let tenant = name.clone();
            one(blocking(move || api.rotate_tenant_token(&p, &tenant))
                .await
                .map(|token| Response::TenantToken { name, token }))
        }
        Request::PushModule { name, hash, public } => {
            let api = api.clone();
            one(blocking(move || api.push_module(&p, &name, &hash, public))
                .await
                .map(|version| Response::ModulePushed { version }))
        }
        Request::ListModules => {
            let api = api.clone();
            one(blocking(move || api.list_modules(&p)).await.map(Response::Modules))
        }
        Request::ShowModule { name } => {
            let api = api.clone();
            one(blocking(move || api.show_module(&p, &name))
                .await
                .map(|m| Response::Modules(vec![m])))
        }
        Request::DeleteModule { name } => {
            let api = api.clone();
            one(blocking(move || api.delete_module(&p, &name))
                .await
                .map(|m| Response::Modules(vec![m])))
        }
        Request::Jobs => one(api.jobs(&p).map(Response::Jobs)),
        Request::JobStatus { job_id } => one(api.job(&p, &job_id).map(|j| Response::Jobs(vec![j]))),
        Request::Cancel { job_id } => one(api.cancel(&p, &job_id).map(|j| Response::Jobs(vec![j]))),
        Request::Follow { job_id } => match api.follow(&p, &job_id) {
            Ok(follower) => Reply::Follow(follower),
            Err(e) => Reply::One(refused(e)),
        },
        Request::RunTask(_) | Request::FetchBucket { .. } | Request::ReleaseShuffle { .. } => {
            Reply::One(Response::Refused { reason: "the coordinator does not run tasks".into() })
        }
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "handler_tenant_tests.rs"]
mod tenant_tests;

#[cfg(test)]
#[path = "handler_module_tests.rs"]
mod module_tests;
