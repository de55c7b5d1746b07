//! Named, versioned modules in the state database: [`ModuleNames`], the registry's table.
//!
//! A name is `TENANT/NAME`; each push of new bytes under it adds a version (the module's content
//! hash; shown as its first 12 hex digits) and moves `latest` to it, pushing bytes that are
//! already a version only moves `latest`. The bytes themselves stay in the content-addressed
//! module store, once, whoever pushed them. A name is private to its tenant unless pushed
//! `--public`; the flag is the name's, set by its latest push.

use super::{StateDb, StateError, decode, encode};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

pub(super) const NAMES: TableDefinition<&str, &[u8]> = TableDefinition::new("module_names");

/// Hex digits of a hash that name a version.
pub const VERSION_DIGITS: usize = 12;

/// One version of a named module.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ModuleVersion {
    /// The module's content hash (SHA-256, hex).
    pub hash: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was pushed.
    pub pushed: SystemTime,
}

impl ModuleVersion {
    /// How the version is written: the hash's first 12 hex digits.
    pub fn id(&self) -> &str {
        &self.hash[..VERSION_DIGITS.min(self.hash.len())]
    }
}

/// A named module: its versions, oldest first, and which is `latest`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct NamedModule {
    /// `TENANT/NAME`.
    pub name: String,
    /// Every version kept, oldest first.
    pub versions: Vec<ModuleVersion>,
    /// The hash `latest` stands for.
    pub latest: String,
    /// Whether every tenant may use it.
    pub public: bool,
}

impl NamedModule {
    /// The version `version` names: `latest`, or a prefix of at least 12 hex digits of a hash.
    pub fn version(&self, version: &str) -> Option<&ModuleVersion> {
        let hash = if version == "latest" { self.latest.as_str() } else { version };
        if hash.len() < VERSION_DIGITS {
            return None;
        }
        self.versions.iter().find(|v| v.hash.starts_with(hash))
    }
}

/// The registry's names.
#[derive(Clone)]
pub struct ModuleNames {
    db: StateDb,
}

impl ModuleNames {
    /// The names of `db`.
    pub fn new(db: StateDb) -> ModuleNames {
        ModuleNames { db }
    }

    /// Push `hash` under `name` (blocking); returns the entry as it now is.
    pub fn push(
        &self,
        name: &str,
        hash: &str,
        bytes: u64,
        public: bool,
    ) -> Result<NamedModule, StateError> {
        let txn = self.db.db().begin_write()?;
        let entry = {
            let mut names = txn.open_table(NAMES)?;
            let mut entry = match names.get(name)? {
                Some(b) => decode::<NamedModule>(b.value(), "named module")?,
                None => NamedModule {
                    name: name.to_string(),
                    versions: Vec::new(),
                    latest: String::new(),
                    public,
                },
            };
            if !entry.versions.iter().any(|v| v.hash == hash) {
                let version =
                    ModuleVersion { hash: hash.to_string(), bytes, pushed: SystemTime::now() };
                entry.versions.push(version);
            }
            entry.latest = hash.to_string();
            entry.public = public;
            names.insert(name, encode(&entry).as_slice())?;
            entry
        };
        txn.commit()?;
        Ok(entry)
    }

    /// One name.
    pub fn get(&self, name: &str) -> Result<Option<NamedModule>, StateError> {
        let txn = self.db.db().begin_read()?;
        let names = txn.open_table(NAMES)?;
        names.get(name)?.map(|b| decode(b.value(), "named module")).transpose()
    }

    /// Every name, in order.
    pub fn list(&self) -> Result<Vec<NamedModule>, StateError> {
        let txn = self.db.db().begin_read()?;
        let names = txn.open_table(NAMES)?;
        let mut out = Vec::new();
        for entry in names.iter()? {
            out.push(decode(entry?.1.value(), "named module")?);
        }
        Ok(out)
    }

    /// Remove one version of `name` (or, with `None`, the whole name) (blocking). Removing
    /// `latest` moves it to the newest version left; removing the last version removes the
    /// name. Returns what was removed, or `None` if there was no such name or version.
    pub fn delete(
        &self,
        name: &str,
        hash: Option<&str>,
    ) -> Result<Option<Vec<ModuleVersion>>, StateError> {
        let txn = self.db.db().begin_write()?;
        let removed = {
            let mut names = txn.open_table(NAMES)?;
            let Some(mut entry) = names
                .get(name)?
                .map(|b| decode::<NamedModule>(b.value(), "named module"))
                .transpose()?
            else {
                return Ok(None);
            };
            let removed: Vec<ModuleVersion> = match hash {
                None => std::mem::take(&mut entry.versions),
                Some(h) => {
                    let Some(at) = entry.versions.iter().position(|v| v.hash == h) else {
                        return Ok(None);
                    };
                    vec![entry.versions.remove(at)]
                }
            };
            match entry.versions.last() {
                None => {
                    names.remove(name)?;
                }
                Some(newest) => {
                    if removed.iter().any(|v| v.hash == entry.latest) {
                        entry.latest = newest.hash.clone();
                    }
                    names.insert(name, encode(&entry).as_slice())?;
                }
            }
            removed
        };
        txn.commit()?;
        Ok(Some(removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn pushes_add_versions_and_move_latest_identical_bytes_add_nothing() {
        let names = ModuleNames::new(StateDb::in_memory().unwrap());
        names.push("acme/geo", &hash('a'), 10, false).unwrap();
        names.push("acme/geo", &hash('b'), 20, true).unwrap();
        let entry = names.push("acme/geo", &hash('a'), 10, true).unwrap();
        assert_eq!(entry.versions.len(), 2, "the same bytes twice are one version");
        assert_eq!((entry.latest.as_str(), entry.public), (hash('a').as_str(), true));
        assert_eq!(entry.version("latest").unwrap().hash, hash('a'));
        assert_eq!(entry.version(&hash('b')[..12]).unwrap().bytes, 20);
        assert!(entry.version(&hash('b')[..11]).is_none(), "12 digits at least");
        assert!(entry.version(&hash('c')[..12]).is_none());
        assert_eq!(names.list().unwrap().len(), 1);
    }

    #[test]
    fn deleting_latest_moves_it_and_the_last_version_takes_the_name() {
        let names = ModuleNames::new(StateDb::in_memory().unwrap());
        names.push("acme/geo", &hash('a'), 10, false).unwrap();
        names.push("acme/geo", &hash('b'), 20, false).unwrap();
        let removed = names.delete("acme/geo", Some(&hash('b'))).unwrap().unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(names.get("acme/geo").unwrap().unwrap().latest, hash('a'));
        assert_eq!(names.delete("acme/geo", Some(&hash('c'))).unwrap(), None);
        assert_eq!(names.delete("acme/geo", None).unwrap().unwrap().len(), 1);
        assert!(names.get("acme/geo").unwrap().is_none());
        assert_eq!(names.delete("acme/geo", None).unwrap(), None);
    }
}
