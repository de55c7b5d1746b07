//! Which tenants have uploaded which module: [`ModuleOwners`].
//!
//! Modules are stored once by content hash, whoever uploads them; what a tenant may run is
//! what it uploaded itself. Without this, a tenant could learn that another tenant has a module
//! (by asking whether a hash is stored) and run it by its hash. Uploading bytes that are
//! stored already costs nothing but adds the uploader as an owner.

use super::{StateDb, StateError};
use redb::{MultimapTableDefinition, ReadableDatabase};

pub(super) const OWNERS: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("module_owners");

/// Module ownership, in the state database.
#[derive(Clone)]
pub struct ModuleOwners {
    db: StateDb,
}

impl ModuleOwners {
    /// The ownership records of `db`.
    pub fn new(db: StateDb) -> ModuleOwners {
        ModuleOwners { db }
    }

    /// `tenant` uploaded module `hash` (blocking).
    pub fn add(&self, hash: &str, tenant: &str) -> Result<(), StateError> {
        let txn = self.db.db().begin_write()?;
        txn.open_multimap_table(OWNERS)?.insert(hash, tenant)?;
        txn.commit()?;
        Ok(())
    }

    /// Whether `tenant` uploaded module `hash`.
    pub fn owns(&self, hash: &str, tenant: &str) -> Result<bool, StateError> {
        let txn = self.db.db().begin_read()?;
        let owners = txn.open_multimap_table(OWNERS)?;
        for owner in owners.get(hash)? {
            if owner?.value() == tenant {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_owns_what_it_uploaded_and_nothing_else() {
        let owners = ModuleOwners::new(StateDb::in_memory().unwrap());
        owners.add("h1", "acme").unwrap();
        owners.add("h1", "globex").unwrap();
        owners.add("h2", "acme").unwrap();
        assert!(owners.owns("h1", "acme").unwrap() && owners.owns("h1", "globex").unwrap());
        assert!(owners.owns("h2", "acme").unwrap());
        assert!(!owners.owns("h2", "globex").unwrap());
        assert!(!owners.owns("h3", "acme").unwrap());
    }
}
