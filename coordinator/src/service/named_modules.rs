//! The module registry's operations of [`CoordinatorApi`]: naming stored modules
//! (`TENANT/NAME`, versions by content hash, `latest`), listing, showing, deleting, and
//! resolving a name for `submit`.
//!
//! Visibility: a tenant uses its own names and public ones; another tenant's private name gets
//! the answer of a name that does not exist. The admin sees every name. A tenant names modules
//! in its own namespace only; the admin names them in any tenant's.

use super::api::CoordinatorApi;
use super::{ApiError, Principal};
use crate::state::module_names::{ModuleVersion, NamedModule, VERSION_DIGITS};
use crate::state::tenants::check_name;
use std::time::SystemTime;
use weft_wire::registry::{ModuleInfo, ModuleVersionInfo};

/// Longest module name (after the tenant's).
const MAX_MODULE_NAME: usize = 100;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// A reference `[TENANT/]NAME[@VERSION]` split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub struct ModuleRef<'a> {
    /// The tenant, if named.
    pub tenant: Option<&'a str>,
    /// The module's name.
    pub name: &'a str,
    /// The version, if named (`latest` or 12+ hex digits).
    pub version: Option<&'a str>,
}

/// Parse `[TENANT/]NAME[@VERSION]`.
pub fn parse_ref(text: &str) -> Result<ModuleRef<'_>, ApiError> {
    let bad = |why: &str| ApiError::Invalid(format!("module name {text:?}: {why}"));
    let (path, version) = match text.split_once('@') {
        Some((p, v)) => (p, Some(v)),
        None => (text, None),
    };
    let (tenant, name) = match path.split_once('/') {
        Some((t, n)) => (Some(t), n),
        None => (None, path),
    };
    if let Some(t) = tenant {
        check_name(t).map_err(|e| bad(&e.to_string()))?;
    }
    let ok_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.');
    if name.is_empty()
        || name.len() > MAX_MODULE_NAME
        || !name.chars().all(ok_char)
        || name.starts_with('.')
    {
        return Err(bad(&format!(
            "names are 1 to {MAX_MODULE_NAME} of a-z, 0-9, '-', '_' and '.', not starting with '.'"
        )));
    }
    if let Some(v) = version {
        let hex =
            v.len() >= VERSION_DIGITS && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_hexdigit());
        if v != "latest" && !hex {
            return Err(bad(
                "a version is `latest` or at least 12 hex digits of the module's hash",
            ));
        }
    }
    Ok(ModuleRef { tenant, name, version })
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn info(entry: &NamedModule, exports: Vec<String>) -> ModuleInfo {
    let version = |v: &ModuleVersion| ModuleVersionInfo {
        version: v.id().to_string(),
        hash: v.hash.clone(),
        bytes: v.bytes,
        pushed_unix: unix(v.pushed),
    };
    ModuleInfo {
        name: entry.name.clone(),
        public: entry.public,
        latest: entry.latest[..VERSION_DIGITS.min(entry.latest.len())].to_string(),
        versions: entry.versions.iter().map(version).collect(),
        exports,
        udfs: Vec::new(),
    }
}

/// The functions a module exports.
fn exports(wasm: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let Ok(wasmparser::Payload::ExportSection(reader)) = payload else { continue };
        for export in reader.into_iter().flatten() {
            if export.kind == wasmparser::ExternalKind::Func {
                out.push(export.name.to_string());
            }
        }
    }
    out
}

/// A UDF as `weft module show` lists it.
fn describe(s: &weft_abi::udf::UdfSignature) -> String {
    if s.doc.is_empty() { s.to_string() } else { format!("{s}  — {}", s.doc) }
}

impl CoordinatorApi {
    /// The full `TENANT/NAME` a principal means, for writing (push, delete): a tenant only in its
    /// own namespace, the admin in an existing tenant's.
    fn own_name(&self, p: &Principal, r: &ModuleRef) -> Result<String, ApiError> {
        match (p, r.tenant) {
            (Principal::Tenant(me), None) => Ok(format!("{me}/{}", r.name)),
            (Principal::Tenant(me), Some(t)) if t == me => Ok(format!("{me}/{}", r.name)),
            (Principal::Tenant(_), Some(t)) => Err(ApiError::Denied(format!(
                "a tenant names modules in its own namespace only, not {t}'s"
            ))),
            (Principal::Admin, Some(t)) => {
                self.tenant_record(t).map_err(|_| ApiError::NotFound(format!("no tenant {t}")))?;
                Ok(format!("{t}/{}", r.name))
            }
            (Principal::Admin, None) => {
                Err(ApiError::Invalid("with the admin token, name the tenant: TENANT/NAME".into()))
            }
            (Principal::Node(_), _) => Err(ApiError::Denied("this needs a client token".into())),
        }
    }

    /// The entry `name` stands for, if `p` may see it: a tenant's own, a public one, or any for
    /// the admin. Anything else is "no module", as for a name that does not exist.
    fn visible(&self, p: &Principal, r: &ModuleRef) -> Result<NamedModule, ApiError> {
        let tenant = self.client(p)?;
        let full = match (r.tenant, tenant) {
            (Some(t), _) => format!("{t}/{}", r.name),
            (None, Some(me)) => format!("{me}/{}", r.name),
            (None, None) => {
                return Err(ApiError::Invalid("with the admin token, name the tenant".into()));
            }
        };
        let missing = || ApiError::NotFound(format!("no module {full}"));
        let entry = self.names().get(&full).map_err(internal)?.ok_or_else(missing)?;
        let mine = tenant.is_none_or(|me| full.split('/').next() == Some(me));
        if mine || entry.public { Ok(entry) } else { Err(missing()) }
    }

    /// The hash a reference `[TENANT/]NAME[@VERSION]` stands for, for `p` (blocking).
    pub(super) fn resolve_module(
        &self,
        p: &Principal,
        reference: &str,
    ) -> Result<String, ApiError> {
        self.resolve_named(p, reference).map(|(_, hash)| hash)
    }

    /// What a reference `[TENANT/]NAME[@VERSION]` stands for, for `p` (blocking): the version's
    /// full name `TENANT/NAME@VERSION` and its hash.
    pub(super) fn resolve_named(
        &self,
        p: &Principal,
        reference: &str,
    ) -> Result<(String, String), ApiError> {
        let r = parse_ref(reference)?;
        let entry = self.visible(p, &r)?;
        let version = r.version.unwrap_or("latest");
        let found = entry.version(version).ok_or_else(|| {
            ApiError::NotFound(format!("module {} has no version {version}", entry.name))
        })?;
        Ok((format!("{}@{}", entry.name, found.id()), found.hash.clone()))
    }

    /// Name stored module `hash` (blocking); returns `TENANT/NAME@VERSION`.
    pub fn push_module(
        &self,
        p: &Principal,
        name: &str,
        hash: &str,
        public: bool,
    ) -> Result<String, ApiError> {
        let r = parse_ref(name)?;
        if r.version.is_some() {
            return Err(ApiError::Invalid(
                "push a name without @VERSION: versions are made".into(),
            ));
        }
        let full = self.own_name(p, &r)?;
        if !self.has_module(p, hash)? {
            return Err(ApiError::NotFound(format!("no module {hash}: upload it first")));
        }
        let bytes = self.modules.get(hash).map_or(0, |b| b.len() as u64);
        let entry = self.names().push(&full, hash, bytes, public).map_err(internal)?;
        tracing::info!(module = %full, %hash, public, "module pushed");
        Ok(format!("{}@{}", entry.name, &hash[..VERSION_DIGITS]))
    }

    /// The named modules `p` may use: its own and public ones (the admin: all).
    pub fn list_modules(&self, p: &Principal) -> Result<Vec<ModuleInfo>, ApiError> {
        let tenant = self.client(p)?;
        let all = self.names().list().map_err(internal)?;
        let mine = |e: &NamedModule| tenant.is_none_or(|me| e.name.split('/').next() == Some(me));
        Ok(all.iter().filter(|e| mine(e) || e.public).map(|e| info(e, Vec::new())).collect())
    }

    /// One named module, with its latest version's exports and UDFs (blocking: may compile
    /// it to read what it declares).
    pub fn show_module(&self, p: &Principal, name: &str) -> Result<ModuleInfo, ApiError> {
        let r = parse_ref(name)?;
        let entry = self.visible(p, &r)?;
        let exports = self.modules.get(&entry.latest).map(|w| exports(&w)).unwrap_or_default();
        let udfs = if exports.iter().any(|e| e == weft_abi::udf::EXPORT_UDF_SIGNATURES) {
            match self.udf_signatures(&entry.latest) {
                Ok(all) => all.iter().map(describe).collect(),
                Err(e) => vec![format!("(cannot read them: {e})")],
            }
        } else {
            Vec::new()
        };
        Ok(ModuleInfo { udfs, ..info(&entry, exports) })
    }

    /// Remove a named module or one version (blocking): refused while a running or queued job
    /// uses a version that would go. The bytes stay stored (other names or jobs may use them).
    pub fn delete_module(&self, p: &Principal, name: &str) -> Result<ModuleInfo, ApiError> {
        let r = parse_ref(name)?;
        let full = self.own_name(p, &r)?;
        let missing = || ApiError::NotFound(format!("no module {name}"));
        let entry = self.names().get(&full).map_err(internal)?.ok_or_else(missing)?;
        let going: Vec<String> = match r.version {
            None => entry.versions.iter().map(|v| v.hash.clone()).collect(),
            Some(v) => vec![entry.version(v).ok_or_else(missing)?.hash.clone()],
        };
        let busy = self
            .jobs
            .list()
            .into_iter()
            .find(|j| !j.state.is_over() && going.contains(&j.module_hash));
        if let Some(job) = busy {
            return Err(ApiError::Invalid(format!(
                "{} is in use by {} ({}): wait for it or cancel it first",
                name,
                job.id,
                job.state.name()
            )));
        }
        let hash = r.version.map(|_| going[0].as_str());
        let removed = self.names().delete(&full, hash).map_err(internal)?.ok_or_else(missing)?;
        tracing::info!(module = %full, versions = removed.len(), "module deleted");
        let gone = NamedModule {
            name: full,
            latest: removed.last().map(|v| v.hash.clone()).unwrap_or_default(),
            versions: removed,
            public: entry.public,
        };
        Ok(info(&gone, Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_parsed_and_bad_ones_named() {
        let r = parse_ref("acme/geo@latest").unwrap();
        assert_eq!(r, ModuleRef { tenant: Some("acme"), name: "geo", version: Some("latest") });
        let r = parse_ref("geo.v2").unwrap();
        assert_eq!((r.tenant, r.name, r.version), (None, "geo.v2", None));
        assert_eq!(parse_ref("a/b@0123456789ab").unwrap().version, Some("0123456789ab"));
        for bad in ["", "a/", "/b", "a/b@", "a/b@123", "A/b", "a/B", "a/../b", "a/.hidden", "a/b/c"]
        {
            assert!(parse_ref(bad).is_err(), "{bad:?} accepted");
        }
    }
}
