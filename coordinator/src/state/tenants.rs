//! Tenants in the state database: [`TenantTable`].
//!
//! A tenant is a name, its caps and share ([`TenantLimits`]), its data root and the SHA-256 of
//! its token's secret. The token itself is never stored: it is shown once when made, and a
//! presented secret is hashed and looked up (a second table maps hashes to names, kept in the
//! same transaction as the tenants). Rotating a token replaces the hash, so the old token stops
//! working at once.

use super::{StateDb, StateError, decode, encode};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::SystemTime;
use weft_wire::tenancy::{TenantChange, TenantLimits};

pub(super) const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenants");
pub(super) const TOKEN_HASHES: TableDefinition<&str, &str> =
    TableDefinition::new("tenant_token_hashes");
/// Names of deleted tenants (→ when, in Unix seconds), which are never given again: jobs, logs
/// and modules are owned by name, so a new tenant of an old name would inherit them.
pub(super) const RETIRED: TableDefinition<&str, u64> = TableDefinition::new("retired_tenants");

/// Longest tenant name.
pub const MAX_TENANT_NAME: usize = 63;

/// What is kept about a tenant.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TenantRecord {
    /// Its name: also its module namespace and its default data directory's name.
    pub name: String,
    /// SHA-256 (hex) of its token's secret.
    pub token_hash: String,
    /// Its caps and share.
    pub limits: TenantLimits,
    /// Its data root, as the coordinator sees it.
    pub data_dir: String,
    /// When it was created.
    pub created: SystemTime,
}

/// Why a tenant operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// No such tenant.
    #[error("no tenant {0}")]
    NotFound(String),
    /// The name is taken.
    #[error("tenant {0} exists already")]
    Exists(String),
    /// The name belonged to a deleted tenant.
    #[error(
        "the name {0} belonged to a deleted tenant and is not given again (its jobs, logs and \
         modules stay its own): choose another name"
    )]
    Retired(String),
    /// The name or a value is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The SHA-256 (hex) of a token's secret, as stored.
pub fn token_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Check a tenant name: 1 to 63 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit, and
/// not `admin` (the admin token's principal). Names are directory names and module namespaces,
/// so nothing else is allowed.
pub fn check_name(name: &str) -> Result<(), TenantError> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let starts_ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > MAX_TENANT_NAME || !starts_ok || !name.chars().all(ok_char) {
        return Err(TenantError::Invalid(format!(
            "tenant names are 1 to {MAX_TENANT_NAME} of a-z, 0-9, '-' and '_', starting with a \
             letter or digit (not {name:?})"
        )));
    }
    if name == "admin" {
        return Err(TenantError::Invalid("\"admin\" is reserved for the admin token".into()));
    }
    Ok(())
}

/// Check caps: a weight of at least 1, and no cap of zero (which could never run anything).
pub fn check_limits(limits: &TenantLimits) -> Result<(), TenantError> {
    if limits.weight == 0 {
        return Err(TenantError::Invalid("a tenant's weight is at least 1".into()));
    }
    let zero = [
        ("--slots", limits.slots.map(u64::from)),
        ("--max-running-jobs", limits.max_running_jobs.map(u64::from)),
        ("--memory-limit", limits.memory_limit_mib),
        ("--task-timeout", limits.task_timeout_secs),
    ]
    .into_iter()
    .find(|(_, v)| *v == Some(0));
    if let Some((flag, _)) = zero {
        return Err(TenantError::Invalid(format!(
            "{flag} 0 would never let a job run; leave the cap out (or say `unlimited`) for none"
        )));
    }
    Ok(())
}

/// The tenants, in the state database.
#[derive(Clone)]
pub struct TenantTable {
    db: StateDb,
}

impl TenantTable {
    /// The tenants of `db`.
    pub fn new(db: StateDb) -> TenantTable {
        TenantTable { db }
    }

    /// Add a tenant (blocking).
    pub fn create(&self, record: &TenantRecord) -> Result<(), TenantError> {
        check_name(&record.name)?;
        check_limits(&record.limits)?;
        let txn = self.db.db().begin_write().map_err(StateError::from)?;
        {
            let mut tenants = txn.open_table(TENANTS).map_err(StateError::from)?;
            if tenants.get(record.name.as_str()).map_err(StateError::from)?.is_some() {
                return Err(TenantError::Exists(record.name.clone()));
            }
            let retired = txn.open_table(RETIRED).map_err(StateError::from)?;
            if retired.get(record.name.as_str()).map_err(StateError::from)?.is_some() {
                return Err(TenantError::Retired(record.name.clone()));
            }
            tenants
                .insert(record.name.as_str(), encode(record).as_slice())
                .map_err(StateError::from)?;
            let mut hashes = txn.open_table(TOKEN_HASHES).map_err(StateError::from)?;
            hashes
                .insert(record.token_hash.as_str(), record.name.as_str())
                .map_err(StateError::from)?;
        }
        txn.commit().map_err(StateError::from)?;
        Ok(())
    }

    /// One tenant.
    pub fn get(&self, name: &str) -> Result<Option<TenantRecord>, StateError> {
        let txn = self.db.db().begin_read()?;
        let tenants = txn.open_table(TENANTS)?;
        tenants.get(name)?.map(|b| decode(b.value(), "tenant")).transpose()
    }

    /// The tenant whose token's secret hashes to `hash`.
    pub fn by_token_hash(&self, hash: &str) -> Result<Option<TenantRecord>, StateError> {
        let name = {
            let txn = self.db.db().begin_read()?;
            let hashes = txn.open_table(TOKEN_HASHES)?;
            match hashes.get(hash)? {
                Some(name) => name.value().to_string(),
                None => return Ok(None),
            }
        };
        // The hash is checked against the record too: a stale mapping never authenticates.
        Ok(self.get(&name)?.filter(|t| t.token_hash == hash))
    }

    /// Every tenant, by name.
    pub fn list(&self) -> Result<Vec<TenantRecord>, StateError> {
        let txn = self.db.db().begin_read()?;
        let tenants = txn.open_table(TENANTS)?;
        let mut out = Vec::new();
        for entry in tenants.iter()? {
            out.push(decode(entry?.1.value(), "tenant")?);
        }
        Ok(out)
    }

    /// Change a tenant with `f` (blocking); returns the changed record.
    fn modify(
        &self,
        name: &str,
        f: impl FnOnce(&mut TenantRecord) -> Result<(), TenantError>,
    ) -> Result<TenantRecord, TenantError> {
        let txn = self.db.db().begin_write().map_err(StateError::from)?;
        let record = {
            let mut tenants = txn.open_table(TENANTS).map_err(StateError::from)?;
            let mut record: TenantRecord = match tenants.get(name).map_err(StateError::from)? {
                Some(b) => decode(b.value(), "tenant")?,
                None => return Err(TenantError::NotFound(name.to_string())),
            };
            let old_hash = record.token_hash.clone();
            f(&mut record)?;
            tenants.insert(name, encode(&record).as_slice()).map_err(StateError::from)?;
            if record.token_hash != old_hash {
                let mut hashes = txn.open_table(TOKEN_HASHES).map_err(StateError::from)?;
                hashes.remove(old_hash.as_str()).map_err(StateError::from)?;
                hashes.insert(record.token_hash.as_str(), name).map_err(StateError::from)?;
            }
            record
        };
        txn.commit().map_err(StateError::from)?;
        Ok(record)
    }

    /// Change a tenant's caps, share or data directory (blocking). `data_dir` is the checked
    /// directory when the change names one.
    pub fn update(
        &self,
        name: &str,
        change: &TenantChange,
        data_dir: Option<String>,
    ) -> Result<TenantRecord, TenantError> {
        self.modify(name, |record| {
            let limits = change.apply(&record.limits);
            check_limits(&limits)?;
            record.limits = limits;
            if let Some(dir) = data_dir {
                record.data_dir = dir;
            }
            Ok(())
        })
    }

    /// Replace a tenant's token hash (blocking): the old token stops working.
    pub fn set_token_hash(&self, name: &str, hash: String) -> Result<TenantRecord, TenantError> {
        self.modify(name, |record| {
            record.token_hash = hash;
            Ok(())
        })
    }

    /// Remove a tenant and its token (blocking); its name is retired.
    pub fn delete(&self, name: &str) -> Result<TenantRecord, TenantError> {
        let txn = self.db.db().begin_write().map_err(StateError::from)?;
        let record = {
            let mut tenants = txn.open_table(TENANTS).map_err(StateError::from)?;
            let record: TenantRecord = match tenants.remove(name).map_err(StateError::from)? {
                Some(b) => decode(b.value(), "tenant")?,
                None => return Err(TenantError::NotFound(name.to_string())),
            };
            let mut hashes = txn.open_table(TOKEN_HASHES).map_err(StateError::from)?;
            hashes.remove(record.token_hash.as_str()).map_err(StateError::from)?;
            let now =
                SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let mut retired = txn.open_table(RETIRED).map_err(StateError::from)?;
            retired.insert(name, now).map_err(StateError::from)?;
            record
        };
        txn.commit().map_err(StateError::from)?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str, secret: &str) -> TenantRecord {
        TenantRecord {
            name: name.into(),
            token_hash: token_hash(secret),
            limits: TenantLimits::default(),
            data_dir: format!("/data/{name}"),
            created: SystemTime::now(),
        }
    }

    #[test]
    fn tenants_are_found_by_the_hash_of_their_token_and_rotation_revokes_the_old_one() {
        let table = TenantTable::new(StateDb::in_memory().unwrap());
        table.create(&tenant("acme", "s1")).unwrap();
        table.create(&tenant("globex", "s2")).unwrap();
        assert_eq!(table.by_token_hash(&token_hash("s1")).unwrap().unwrap().name, "acme");
        assert!(table.by_token_hash(&token_hash("nope")).unwrap().is_none());
        table.set_token_hash("acme", token_hash("s3")).unwrap();
        assert!(table.by_token_hash(&token_hash("s1")).unwrap().is_none(), "rotated away");
        assert_eq!(table.by_token_hash(&token_hash("s3")).unwrap().unwrap().name, "acme");
        table.delete("globex").unwrap();
        assert!(table.by_token_hash(&token_hash("s2")).unwrap().is_none(), "deleted");
        assert_eq!(table.list().unwrap().len(), 1);
        assert!(matches!(table.delete("globex"), Err(TenantError::NotFound(_))));
    }

    #[test]
    fn a_deleted_tenants_name_is_not_given_again_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let table = TenantTable::new(StateDb::open(dir.path()).unwrap());
            table.create(&tenant("acme", "s1")).unwrap();
            table.delete("acme").unwrap();
        }
        let table = TenantTable::new(StateDb::open(dir.path()).unwrap());
        let e = table.create(&tenant("acme", "s2")).unwrap_err();
        assert!(matches!(e, TenantError::Retired(_)), "{e}");
        assert!(e.to_string().contains("belonged to a deleted tenant"), "{e}");
        assert!(table.by_token_hash(&token_hash("s2")).unwrap().is_none());
        table.create(&tenant("acme2", "s2")).unwrap();
    }

    #[test]
    fn names_limits_and_duplicates_are_checked() {
        let table = TenantTable::new(StateDb::in_memory().unwrap());
        table.create(&tenant("acme", "s1")).unwrap();
        assert!(matches!(table.create(&tenant("acme", "s9")), Err(TenantError::Exists(_))));
        for bad in ["", "Acme", "../b", "a/b", "admin", "-x", &"a".repeat(64)] {
            let e = table.create(&tenant(bad, "s")).expect_err(bad).to_string();
            assert!(e.contains("tenant names") || e.contains("reserved"), "{bad}: {e}");
        }
        let mut zero = tenant("zero", "s");
        zero.limits.slots = Some(0);
        let e = table.create(&zero).unwrap_err().to_string();
        assert!(e.contains("--slots 0"), "{e}");
        let change = TenantChange { weight: Some(0), ..TenantChange::default() };
        assert!(table.update("acme", &change, None).is_err());
        let change = TenantChange { slots: Some(Some(2)), ..TenantChange::default() };
        let changed = table.update("acme", &change, Some("/elsewhere".into())).unwrap();
        assert_eq!((changed.limits.slots, changed.data_dir.as_str()), (Some(2), "/elsewhere"));
        assert!(matches!(table.update("nobody", &change, None), Err(TenantError::NotFound(_))));
    }

    #[test]
    fn tenants_survive_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        TenantTable::new(StateDb::open(dir.path()).unwrap()).create(&tenant("acme", "s1")).unwrap();
        let table = TenantTable::new(StateDb::open(dir.path()).unwrap());
        assert_eq!(table.get("acme").unwrap().unwrap().data_dir, "/data/acme");
    }
}
