//! The module registry through the request handling: names and versions, what another tenant
//! may see and run, deleting, and exports.

use super::tenant_tests::{create, job_of, login};
use super::tests::{Fixture, ask, fixture, reason};
use super::*;
use crate::service::jobs::JobState;
use weft_sandbox::module_hash;
use weft_wire::registry::ModuleInfo;
use weft_wire::tenancy::TenantLimits;

/// `(module (func (export "country_of")))`, by hand.
fn tiny_wasm(export: &str) -> Vec<u8> {
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend([0x01, 0x04, 0x01, 0x60, 0x00, 0x00]); // one type: () -> ()
    wasm.extend([0x03, 0x02, 0x01, 0x00]); // one function of it
    let mut export_section = vec![0x01, export.len() as u8];
    export_section.extend(export.as_bytes());
    export_section.extend([0x00, 0x00]); // a function, index 0
    wasm.extend([0x07, export_section.len() as u8]);
    wasm.extend(export_section);
    wasm.extend([0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b]); // its body: end
    wasm
}

/// Upload and push `wasm` as `name` for `p`; returns the version text.
async fn push(f: &Fixture, p: &Principal, name: &str, wasm: Vec<u8>, public: bool) -> String {
    let hash = module_hash(&wasm);
    assert_eq!(
        ask(f, p, Request::UploadModule { hash: hash.clone(), wasm }).await,
        Response::ModuleStored
    );
    match ask(f, p, Request::PushModule { name: name.into(), hash, public }).await {
        Response::ModulePushed { version } => version,
        other => panic!("push {name}: {other:?}"),
    }
}

fn modules(r: Response) -> Vec<ModuleInfo> {
    match r {
        Response::Modules(m) => m,
        other => panic!("expected modules, got {other:?}"),
    }
}

/// Whether a submission got past finding its module (the tiny module may then be refused as a
/// job, or start and fail).
fn found(r: Response) -> bool {
    match r {
        Response::Submitted { .. } => true,
        Response::Refused { reason } => !reason.contains("no module"),
        _ => false,
    }
}

fn submit(name: &str) -> Request {
    Request::Submit {
        hash: name.into(),
        args: vec![],
        memory_limit_mib: None,
        task_timeout_secs: None,
    }
}

#[tokio::test]
async fn names_versions_and_latest() {
    let f = fixture();
    let acme = login(&f, &create(&f, "acme", TenantLimits::default()).await).unwrap();
    let (v1, v2) = (tiny_wasm("country_of"), tiny_wasm("city_of"));
    let first = push(&f, &acme, "geo", v1.clone(), false).await;
    assert_eq!(first, format!("acme/geo@{}", &module_hash(&v1)[..12]));
    let second = push(&f, &acme, "acme/geo", v2.clone(), false).await;
    assert_eq!(second, format!("acme/geo@{}", &module_hash(&v2)[..12]));
    let shown = modules(ask(&f, &acme, Request::ShowModule { name: "geo".into() }).await);
    assert_eq!(shown[0].versions.len(), 2);
    assert_eq!(shown[0].latest, module_hash(&v2)[..12]);
    assert_eq!(shown[0].exports, ["city_of"], "the latest version's exports");
    // Pushing the old bytes again moves latest back without a third version.
    push(&f, &acme, "geo", v1.clone(), false).await;
    let shown = modules(ask(&f, &acme, Request::ShowModule { name: "acme/geo".into() }).await);
    assert_eq!(
        (shown[0].versions.len(), shown[0].exports.clone()),
        (2, vec!["country_of".to_string()])
    );
    // A name is resolved when a job is submitted: the tiny module gets as far as being run.
    assert!(found(ask(&f, &acme, submit("acme/geo@latest")).await));
    let why = reason(ask(&f, &acme, submit("acme/geo@ffffffffffff")).await);
    assert!(why.contains("has no version ffffffffffff"), "{why}");
    // Names are checked; the admin names the tenant; a tenant only its own namespace.
    let bad = Request::PushModule { name: "../x".into(), hash: module_hash(&v1), public: false };
    assert!(reason(ask(&f, &acme, bad).await).contains("module name"));
    let bare = Request::PushModule { name: "geo".into(), hash: module_hash(&v1), public: false };
    assert!(reason(ask(&f, &Principal::Admin, bare).await).contains("TENANT/NAME"));
    let unknown = Request::PushModule { name: "geo2".into(), hash: "c".repeat(64), public: false };
    assert!(reason(ask(&f, &acme, unknown).await).contains("upload it first"));
}

#[tokio::test]
async fn another_tenants_private_module_is_not_there_and_a_public_one_is() {
    let f = fixture();
    let acme = login(&f, &create(&f, "acme", TenantLimits::default()).await).unwrap();
    let globex = login(&f, &create(&f, "globex", TenantLimits::default()).await).unwrap();
    let wasm = tiny_wasm("country_of");
    push(&f, &acme, "geo", wasm.clone(), false).await;
    assert!(modules(ask(&f, &globex, Request::ListModules).await).is_empty());
    for request in [|n: &str| Request::ShowModule { name: n.into() }, submit] {
        let theirs = reason(ask(&f, &globex, request("acme/geo")).await);
        let nobodys = reason(ask(&f, &globex, request("acme/nope")).await);
        assert_eq!(theirs.replace("acme/geo", "X"), nobodys.replace("acme/nope", "X"));
    }
    let steal =
        Request::PushModule { name: "acme/evil".into(), hash: module_hash(&wasm), public: true };
    assert!(reason(ask(&f, &globex, steal).await).contains("own namespace"));
    let delete = Request::DeleteModule { name: "acme/geo".into() };
    assert!(reason(ask(&f, &globex, delete).await).contains("own namespace"));
    // Made public, every tenant lists it, sees it and may run it by name (not by hash: the
    // bytes are still acme's).
    push(&f, &acme, "geo", wasm.clone(), true).await;
    let listed = modules(ask(&f, &globex, Request::ListModules).await);
    assert_eq!((listed[0].name.as_str(), listed[0].public), ("acme/geo", true));
    assert!(found(ask(&f, &globex, submit("acme/geo")).await));
    let by_hash = reason(ask(&f, &globex, submit(&module_hash(&wasm))).await);
    assert!(by_hash.contains("no module"), "{by_hash}");
    assert_eq!(modules(ask(&f, &Principal::Admin, Request::ListModules).await).len(), 1);
}

#[tokio::test]
async fn a_module_in_use_is_not_deleted_and_versions_go_one_by_one() {
    let f = fixture();
    let acme = login(&f, &create(&f, "acme", TenantLimits::default()).await).unwrap();
    let (v1, v2) = (tiny_wasm("a"), tiny_wasm("b"));
    push(&f, &acme, "geo", v1.clone(), false).await;
    push(&f, &acme, "geo", v2.clone(), false).await;
    // A running job of version 1.
    let job = job_of(&f, Some("acme"));
    let store = f.api.job_store();
    let mut record = store.get(&job).unwrap();
    record.state = JobState::Running;
    record.module_hash = module_hash(&v1);
    store.insert(record).unwrap();
    let old = format!("geo@{}", &module_hash(&v1)[..12]);
    let why = reason(ask(&f, &acme, Request::DeleteModule { name: old.clone() }).await);
    assert!(why.contains(&format!("in use by {job}")), "{why}");
    let new = format!("geo@{}", &module_hash(&v2)[..12]);
    let gone = modules(ask(&f, &acme, Request::DeleteModule { name: new }).await);
    assert_eq!(gone[0].versions.len(), 1);
    let shown = modules(ask(&f, &acme, Request::ShowModule { name: "geo".into() }).await);
    assert_eq!(shown[0].latest, module_hash(&v1)[..12], "latest moved to what is left");
    store.finish(&job, JobState::Succeeded, None).unwrap();
    modules(ask(&f, &acme, Request::DeleteModule { name: "geo".into() }).await);
    let why = reason(ask(&f, &acme, Request::ShowModule { name: "geo".into() }).await);
    assert_eq!(why, "no module acme/geo");
}
