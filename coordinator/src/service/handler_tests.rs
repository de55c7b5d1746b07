//! The coordinator's request handling without sockets: principals, refusals, node admission,
//! modules and jobs.

use super::*;
use crate::executor::TaskSuccess;
use crate::service::ApiConfig;
use std::time::Duration;
use weft_abi::task::{TaskFailure, TaskSpec};
use weft_sandbox::{SandboxPolicy, module_hash};
use weft_wire::pki::{NodeKey, fingerprint};

struct NoLink;

#[async_trait::async_trait]
impl NodeLink for NoLink {
    async fn run_task(&self, _t: TaskSpec, _timeout: Duration) -> Result<TaskSuccess, TaskFailure> {
        Err(TaskFailure::infrastructure("no node behind this link"))
    }
    async fn release(&self, _job: String, _action: u32, _stage: Option<u32>) {}
    fn close(&self, _reason: &str) {}
    fn connection_id(&self) -> u64 {
        0
    }
}

pub(super) struct Fixture {
    pub(super) dir: tempfile::TempDir,
    pub(super) api: Arc<CoordinatorApi>,
}

pub(super) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let api = open_api(dir.path());
    Fixture { dir, api }
}

/// The API on the state and data directories under `dir`.
pub(super) fn open_api(dir: &std::path::Path) -> Arc<CoordinatorApi> {
    let config = ApiConfig {
        state_dir: dir.join("state"),
        data_dir: dir.join("data"),
        policy: SandboxPolicy::default(),
        result_limit: 1 << 20,
    };
    CoordinatorApi::open(config, tokio::runtime::Handle::current()).unwrap()
}

pub(super) async fn ask(f: &Fixture, p: &Principal, request: Request) -> Response {
    match handle(&f.api, p, request, Some(Arc::new(NoLink))).await {
        Reply::One(r) => r,
        Reply::Follow(_) => panic!("unexpected follow"),
    }
}

pub(super) fn reason(response: Response) -> String {
    match response {
        Response::Refused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Join as a node; returns its principal.
fn join(f: &Fixture) -> Principal {
    let key = NodeKey::generate().unwrap();
    let secret = f.api.pki().join_token.secret.clone();
    let request = Request::Join { token_secret: secret, name: "n1".into(), csr_pem: key.csr_pem };
    let Response::Joined { cert_pem, .. } = handle_anonymous(&f.api, request).0 else {
        panic!("join refused")
    };
    let cert = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    f.api.node_principal(&fingerprint(&cert)).expect("the certificate names the node")
}

use rustls::pki_types::pem::PemObject;

#[tokio::test]
async fn an_anonymous_connection_may_only_authenticate_or_join() {
    let f = fixture();
    let (r, p) = handle_anonymous(&f.api, Request::ClusterStatus);
    assert_eq!((reason(r), p), ("authenticate first".to_string(), None));
    let (r, p) = handle_anonymous(&f.api, Request::Authenticate { token_secret: "0".repeat(64) });
    assert!(reason(r).starts_with("invalid token"));
    assert_eq!(p, None);
    let join_secret = f.api.pki().join_token.secret.clone();
    let (r, p) = handle_anonymous(&f.api, Request::Authenticate { token_secret: join_secret });
    assert!(p.is_none(), "the join token is not a client token: {r:?}");
    let admin = f.api.pki().admin_token.secret.clone();
    let (r, p) = handle_anonymous(&f.api, Request::Authenticate { token_secret: admin });
    assert_eq!(r, Response::Authenticated { principal: "admin".into() });
    assert_eq!(p, Some(Principal::Admin));
    let bad_join =
        Request::Join { token_secret: "1".repeat(64), name: "x".into(), csr_pem: "".into() };
    assert_eq!(reason(handle_anonymous(&f.api, bad_join).0), "invalid join token");
}

#[tokio::test]
async fn nodes_and_clients_may_each_do_only_their_own_part() {
    let f = fixture();
    let node = join(&f);
    let admin = Principal::Admin;
    assert!(reason(ask(&f, &node, Request::ClusterStatus).await).contains("admin token"));
    assert!(reason(ask(&f, &node, Request::Jobs).await).contains("admin or tenant token"));
    let hb = Request::Heartbeat { running: 0, counters: Default::default() };
    assert!(reason(ask(&f, &admin, hb.clone()).await).contains("node certificate"));
    let register = Request::Register { slots: 3, shuffle_addr: "127.0.0.1:9".into() };
    assert!(reason(ask(&f, &admin, register.clone()).await).contains("node certificate"));
    assert!(
        reason(ask(&f, &admin, Request::FetchModule { hash: "0".repeat(64) }).await)
            .contains("node certificate")
    );
    let broadcast = Request::FetchBroadcast { job: "job-1".into(), hash: "0".repeat(64) };
    assert!(reason(ask(&f, &admin, broadcast.clone()).await).contains("node certificate"));
    // A node asking for a value no running job has is told so.
    assert!(reason(ask(&f, &node, broadcast).await).contains("has no broadcast"));
    // The node registers and heartbeats; the client sees it with its slots.
    let Response::Registered { node_id } = ask(&f, &node, register).await else { panic!() };
    assert_eq!(Principal::Node(node_id.clone()), node);
    assert_eq!(ask(&f, &node, hb).await, Response::Ack);
    let Response::ClusterStatus { nodes, counters } = ask(&f, &admin, Request::ClusterStatus).await
    else {
        panic!()
    };
    assert_eq!(nodes.len(), 1);
    assert_eq!((nodes[0].id.as_str(), nodes[0].slots, nodes[0].alive), (node_id.as_str(), 3, true));
    assert_eq!(counters.shuffle_bytes_relayed, 0);
    assert_eq!(f.api.pool.ledger().capacity(), 3, "the node's slots are in the ledger");
    // Tasks are not the coordinator's business, and nobody authenticates twice.
    let release = Request::ReleaseShuffle { job: "j".into(), action: 1, stage: None };
    assert!(reason(ask(&f, &node, release).await).contains("does not run tasks"));
    let again = Request::Authenticate { token_secret: "x".into() };
    assert!(reason(ask(&f, &admin, again).await).contains("already authenticated"));
}

#[tokio::test]
async fn modules_are_stored_by_checked_hash_and_bad_ones_refused_at_submit() {
    let f = fixture();
    let admin = Principal::Admin;
    let not_wasm = b"this is not wasm".to_vec();
    let hash = module_hash(&not_wasm);
    let wrong = Request::UploadModule { hash: "0".repeat(64), wasm: not_wasm.clone() };
    assert!(reason(ask(&f, &admin, wrong).await).contains("SHA-256"));
    assert_eq!(
        ask(&f, &admin, Request::HasModule { hash: hash.clone() }).await,
        Response::ModuleStatus { present: false }
    );
    let upload = Request::UploadModule { hash: hash.clone(), wasm: not_wasm };
    assert_eq!(ask(&f, &admin, upload).await, Response::ModuleStored);
    assert_eq!(
        ask(&f, &admin, Request::HasModule { hash: hash.clone() }).await,
        Response::ModuleStatus { present: true }
    );
    let submit = Request::Submit {
        hash: hash.clone(),
        args: vec![],
        memory_limit_mib: None,
        task_timeout_secs: None,
    };
    assert!(reason(ask(&f, &admin, submit).await).contains("not a WebAssembly module"));
    let unknown = Request::Submit {
        hash: "a".repeat(64),
        args: vec![],
        memory_limit_mib: None,
        task_timeout_secs: None,
    };
    assert!(reason(ask(&f, &admin, unknown).await).contains("upload it first"));
    let many = Request::Submit {
        hash,
        args: vec![String::new(); weft_abi::limits::MAX_JOB_ARGS + 1],
        memory_limit_mib: None,
        task_timeout_secs: None,
    };
    assert!(reason(ask(&f, &admin, many).await).contains("at most"));
    // A node fetches what is stored, and nothing else.
    let node = join(&f);
    let missing = Request::FetchModule { hash: "b".repeat(64) };
    assert!(reason(ask(&f, &node, missing).await).contains("unknown module"));
}

#[tokio::test]
async fn unknown_jobs_are_named_as_such() {
    let f = fixture();
    let admin = Principal::Admin;
    for request in [
        Request::JobStatus { job_id: "job-99".into() },
        Request::Cancel { job_id: "job-99".into() },
        Request::Follow { job_id: "job-99".into() },
    ] {
        let reply = handle(&f.api, &admin, request, None).await;
        let Reply::One(response) = reply else { panic!("a follower for no job") };
        assert_eq!(reason(response), "no job job-99");
    }
    assert_eq!(ask(&f, &admin, Request::Jobs).await, Response::Jobs(vec![]));
}
