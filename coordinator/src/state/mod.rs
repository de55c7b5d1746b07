//! The coordinator's durable state: one embedded database (`redb`) in the state directory,
//! `state.redb`, holding what must survive a restart: the job history and each ended job's last
//! MiB of log (`job_table`), tenants with the hashes of their tokens (`tenants`), which
//! tenants own which stored modules (`module_owners`), and the registry's named, versioned
//! modules (`module_names`).
//!
//! Design choice: one file, one transaction per change. redb is pure Rust, transactional and
//! crash-safe (a write is either all there after a kill or not at all), and it locks its file, so
//! two coordinators cannot share one state directory by mistake. Values are MessagePack, as on the
//! wire; every table is small (bounded history), so no table needs an index beyond its key.
//! The same code runs on an in-memory backend in unit tests ([`StateDb::in_memory`]), so the
//! durable store and the test store cannot drift apart.
//!
//! Costs: a commit waits for `fsync`, ~1–5 ms on a local disk. Commits happen on job submit and
//! end and on tenant changes, never per task.

pub mod job_table;
pub mod module_names;
pub mod module_owners;
pub mod tenants;

use redb::{Database, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;

/// Why the state database failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database itself (open, transaction, table, commit).
    #[error("state database: {0}")]
    Db(String),
    /// A stored value does not decode: the file was written by an incompatible version.
    #[error("state database: a stored {what} does not decode ({reason})")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
}

macro_rules! from_redb {
    ($($e:ty),*) => {$(
        impl From<$e> for StateError {
            fn from(e: $e) -> Self {
                StateError::Db(e.to_string())
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The database, shared by the tables that live in it.
#[derive(Clone)]
pub struct StateDb {
    db: Arc<Database>,
}

impl StateDb {
    /// Open (or create) `state_dir/state.redb` (blocking). A second coordinator on the same
    /// state directory is refused here.
    pub fn open(state_dir: &Path) -> Result<StateDb, StateError> {
        let path = state_dir.join("state.redb");
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StateError::Db(format!(
                "{} is in use by another process (is another coordinator running on this \
                 state directory?)",
                path.display()
            )),
            e => StateError::Db(format!("{}: {e}", path.display())),
        })?;
        StateDb::with_tables(db)
    }

    /// A database in memory, for tests.
    pub fn in_memory() -> Result<StateDb, StateError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        StateDb::with_tables(db)
    }

    /// Every table made once, here, so that reads never meet a table that was never written.
    fn with_tables(db: Database) -> Result<StateDb, StateError> {
        let txn = db.begin_write()?;
        txn.open_table(META)?;
        txn.open_table(job_table::JOBS)?;
        txn.open_table(job_table::JOB_LOGS)?;
        txn.open_table(tenants::TENANTS)?;
        txn.open_table(tenants::TOKEN_HASHES)?;
        txn.open_table(tenants::RETIRED)?;
        txn.open_table(module_names::NAMES)?;
        txn.open_multimap_table(module_owners::OWNERS)?;
        txn.commit()?;
        Ok(StateDb { db: Arc::new(db) })
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }
}

/// Meta values (counters) by name.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("state values always encode")
}

pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, StateError> {
    rmp_serde::from_slice(bytes).map_err(|e| StateError::Corrupt { what, reason: e.to_string() })
}
