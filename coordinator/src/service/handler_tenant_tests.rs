//! Tenants through the request handling, without sockets: who may manage them, what a tenant's
//! token sees of jobs and modules, revocation, and what survives reopening the state.

use super::tests::{Fixture, ask, fixture, open_api, reason};
use super::*;
use crate::service::jobs::{JobRecord, JobState};
use std::time::SystemTime;
use weft_sandbox::module_hash;
use weft_wire::pki::{Token, TokenKind};
use weft_wire::tenancy::{TenantChange, TenantInfo, TenantLimits};

/// Create a tenant; returns its token's secret.
pub(super) async fn create(f: &Fixture, name: &str, limits: TenantLimits) -> String {
    let request = Request::CreateTenant { name: name.into(), limits, data_dir: None };
    match ask(f, &Principal::Admin, request).await {
        Response::TenantToken { name: n, token } => {
            assert_eq!(n, name);
            Token::parse(&token, TokenKind::Tenant).expect("a tenant token").secret
        }
        other => panic!("create {name}: {other:?}"),
    }
}

pub(super) fn login(f: &Fixture, secret: &str) -> Result<Principal, String> {
    match handle_anonymous(&f.api, Request::Authenticate { token_secret: secret.into() }) {
        (_, Some(p)) => Ok(p),
        (r, None) => Err(reason(r)),
    }
}

/// A job record of `tenant`, as the coordinator keeps it.
pub(super) fn job_of(f: &Fixture, tenant: Option<&str>) -> String {
    let store = f.api.job_store();
    let (id, seq) = store.next_id().unwrap();
    let record = JobRecord {
        id: id.clone(),
        seq,
        tenant: tenant.map(str::to_string),
        module_hash: "m".repeat(64),
        args: vec![],
        state: JobState::Succeeded,
        error: None,
        waiting: None,
        submitted: SystemTime::now(),
        ended: Some(SystemTime::now()),
        progress: Default::default(),
    };
    store.insert(record).unwrap();
    id
}

fn tenants(r: Response) -> Vec<TenantInfo> {
    match r {
        Response::Tenants(t) => t,
        other => panic!("expected tenants, got {other:?}"),
    }
}

#[tokio::test]
async fn only_the_admin_manages_tenants_and_each_gets_its_own_data_directory() {
    let f = fixture();
    let secret = create(&f, "acme", TenantLimits { slots: Some(2), ..Default::default() }).await;
    let acme = login(&f, &secret).unwrap();
    assert_eq!(acme, Principal::Tenant("acme".into()));
    let attempt = Request::CreateTenant {
        name: "evil".into(),
        limits: TenantLimits::default(),
        data_dir: None,
    };
    assert!(reason(ask(&f, &acme, attempt).await).contains("admin token"));
    assert!(reason(ask(&f, &acme, Request::ListTenants).await).contains("admin token"));
    let listed = tenants(ask(&f, &Principal::Admin, Request::ListTenants).await);
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].name.as_str(), listed[0].limits.slots), ("acme", Some(2)));
    assert!(std::path::Path::new(&listed[0].data_dir).is_dir(), "made at create");
    assert!(listed[0].data_dir.ends_with("/data/acme"), "{}", listed[0].data_dir);
    // A name taken, a bad name, a data directory that is not there or not absolute.
    let again = Request::CreateTenant {
        name: "acme".into(),
        limits: TenantLimits::default(),
        data_dir: None,
    };
    assert!(reason(ask(&f, &Principal::Admin, again).await).contains("exists already"));
    for (name, dir, want) in [
        ("../up", None, "tenant names"),
        ("b", Some("/nonexistent/dir"), "/nonexistent/dir"),
        ("c", Some("relative/dir"), "absolute path"),
    ] {
        let request = Request::CreateTenant {
            name: name.into(),
            limits: TenantLimits::default(),
            data_dir: dir.map(str::to_string),
        };
        let why = reason(ask(&f, &Principal::Admin, request).await);
        assert!(why.contains(want), "{name}: {why}");
    }
    // Updating names what changes; a cap can be removed again.
    let change = TenantChange { slots: Some(None), weight: Some(3), ..Default::default() };
    let request = Request::UpdateTenant { name: "acme".into(), change };
    let updated = tenants(ask(&f, &Principal::Admin, request).await);
    assert_eq!((updated[0].limits.slots, updated[0].limits.weight), (None, 3));
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_jobs_and_others_look_like_no_job() {
    let f = fixture();
    let acme = login(&f, &create(&f, "acme", TenantLimits::default()).await).unwrap();
    let globex = login(&f, &create(&f, "globex", TenantLimits::default()).await).unwrap();
    let mine = job_of(&f, Some("acme"));
    let theirs = job_of(&f, Some("globex"));
    let admins = job_of(&f, None);
    let listed = |r: Response| match r {
        Response::Jobs(jobs) => jobs.into_iter().map(|j| (j.id, j.tenant)).collect::<Vec<_>>(),
        other => panic!("expected jobs, got {other:?}"),
    };
    assert_eq!(listed(ask(&f, &acme, Request::Jobs).await), [(mine.clone(), "acme".into())]);
    assert_eq!(listed(ask(&f, &Principal::Admin, Request::Jobs).await).len(), 3);
    for other in [theirs.clone(), admins.clone()] {
        let nonexistent = "job-999".to_string();
        for id in [other, nonexistent] {
            for request in
                [Request::JobStatus { job_id: id.clone() }, Request::Cancel { job_id: id.clone() }]
            {
                assert_eq!(reason(ask(&f, &acme, request).await), format!("no job {id}"));
            }
            let Reply::One(r) =
                handle(&f.api, &acme, Request::Follow { job_id: id.clone() }, None).await
            else {
                panic!("a follower of a job acme may not see")
            };
            assert_eq!(reason(r), format!("no job {id}"));
        }
    }
    assert_eq!(listed(ask(&f, &globex, Request::JobStatus { job_id: theirs }).await).len(), 1);
    // Cluster-wide status stays the admin's.
    assert!(reason(ask(&f, &acme, Request::ClusterStatus).await).contains("admin token"));
}

#[tokio::test]
async fn a_tenant_is_told_only_of_modules_it_uploaded_and_cannot_run_others() {
    let f = fixture();
    let acme = login(&f, &create(&f, "acme", TenantLimits::default()).await).unwrap();
    let globex = login(&f, &create(&f, "globex", TenantLimits::default()).await).unwrap();
    let bytes = b"not really wasm".to_vec();
    let hash = module_hash(&bytes);
    let upload = Request::UploadModule { hash: hash.clone(), wasm: bytes.clone() };
    assert_eq!(ask(&f, &acme, upload).await, Response::ModuleStored);
    let has = Request::HasModule { hash: hash.clone() };
    assert_eq!(ask(&f, &acme, has.clone()).await, Response::ModuleStatus { present: true });
    assert_eq!(ask(&f, &globex, has.clone()).await, Response::ModuleStatus { present: false });
    assert_eq!(ask(&f, &Principal::Admin, has).await, Response::ModuleStatus { present: true });
    // Running it by its hash gets the answer of a hash nobody uploaded.
    let submit = |hash: &str| Request::Submit {
        hash: hash.into(),
        args: vec![],
        memory_limit_mib: None,
        task_timeout_secs: None,
    };
    let theirs = reason(ask(&f, &globex, submit(&hash)).await);
    let nobodys = reason(ask(&f, &globex, submit(&"a".repeat(64))).await);
    assert_eq!(theirs.replace(&hash, "H"), nobodys.replace(&"a".repeat(64), "H"));
    // Uploading the same bytes makes globex an owner too; they are stored once.
    let upload = Request::UploadModule { hash: hash.clone(), wasm: bytes };
    assert_eq!(ask(&f, &globex, upload).await, Response::ModuleStored);
    let has = Request::HasModule { hash };
    assert_eq!(ask(&f, &globex, has).await, Response::ModuleStatus { present: true });
}

#[tokio::test]
async fn rotated_revoked_and_deleted_tokens_are_refused() {
    let f = fixture();
    let old = create(&f, "acme", TenantLimits::default()).await;
    let acme = login(&f, &old).unwrap();
    let request = Request::RotateTenantToken { name: "acme".into() };
    let Response::TenantToken { token, .. } = ask(&f, &Principal::Admin, request).await else {
        panic!("no new token")
    };
    let new = Token::parse(&token, TokenKind::Tenant).unwrap().secret;
    let why = login(&f, &old).unwrap_err();
    assert!(why.contains("invalid token") && why.contains("replaced"), "{why}");
    assert_eq!(login(&f, &new).unwrap(), acme);
    let job = job_of(&f, Some("acme"));
    // A tenant with a job running cannot be deleted; without, it can, and its connections stop
    // working at once.
    let running = job_of(&f, Some("acme"));
    f.api.job_store().finish(&job, JobState::Succeeded, None).unwrap();
    let store = f.api.job_store();
    let mut record = store.get(&running).unwrap();
    record.state = JobState::Running;
    store.insert(record).unwrap();
    let delete = Request::DeleteTenant { name: "acme".into() };
    let why = reason(ask(&f, &Principal::Admin, delete.clone()).await);
    assert!(why.contains("1 running or queued job"), "{why}");
    store.finish(&running, JobState::Cancelled, None).unwrap();
    assert_eq!(tenants(ask(&f, &Principal::Admin, delete).await).len(), 1);
    assert!(login(&f, &new).is_err());
    assert!(reason(ask(&f, &acme, Request::Jobs).await).contains("no longer exists"));
}

#[tokio::test]
async fn tenants_tokens_and_history_survive_reopening_the_state() {
    let f = fixture();
    let secret = create(&f, "acme", TenantLimits { weight: 2, ..Default::default() }).await;
    let job = job_of(&f, Some("acme"));
    let Fixture { dir, api } = f;
    drop(api);
    let again = Fixture { api: open_api(dir.path()), dir };
    let acme = login(&again, &secret).expect("the token still works");
    match ask(&again, &acme, Request::JobStatus { job_id: job.clone() }).await {
        Response::Jobs(jobs) => {
            assert_eq!((jobs[0].id.as_str(), jobs[0].state.as_str()), (job.as_str(), "succeeded"))
        }
        other => panic!("{other:?}"),
    }
    let listed = tenants(ask(&again, &Principal::Admin, Request::ListTenants).await);
    assert_eq!(listed[0].limits.weight, 2);
}
