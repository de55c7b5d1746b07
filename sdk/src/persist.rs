//! Keeping a dataset's partitions for later actions of the job: `cache`, `persist` and
//! `unpersist`.
//!
//! Design choice: marking is in place, as in Spark — `ds.cache()` marks `ds` itself (and returns
//! it), so every handle on the dataset reads the kept partitions. The first action that computes
//! a marked dataset writes each partition as a block where it was computed (the node's memory up
//! to its bound, then its work directory); later actions read the blocks instead of computing the
//! lineage again, and compute again from lineage only the blocks that were lost with their node.
//! Blocks are released when the job ends; `unpersist` makes later actions compute the dataset
//! again (the request travels with the next action).

use crate::exec::{self, fn_ref_sink, fn_ref_source, sinks, sources};
use crate::plan::{CacheCalls, DatasetId};
use crate::{Dataset, Record};
use std::cell::RefCell;

thread_local! {
    /// Datasets unpersisted since the last action.
    static UNPERSISTED: RefCell<Vec<DatasetId>> = const { RefCell::new(Vec::new()) };
}

/// The datasets unpersisted since the last action, taken (for the next action's request).
pub(crate) fn take_unpersisted() -> Vec<DatasetId> {
    UNPERSISTED.with(|u| std::mem::take(&mut *u.borrow_mut()))
}

impl<T: Record> Dataset<T> {
    /// Keep this dataset's partitions once an action has computed them, for later actions of
    /// the job (Spark's `cache`: in the nodes' memory, spilling to their disks past the bound).
    /// Returns the dataset, which is marked in place.
    pub fn cache(&self) -> Dataset<T> {
        let calls = CacheCalls {
            write: exec::call(
                format!("cache of dataset {}", self.node.id().0),
                fn_ref_sink(sinks::collect::<T>),
                Vec::new(),
            ),
            read: exec::call(
                format!("cached dataset {}", self.node.id().0),
                fn_ref_source(sources::records::<T>),
                Vec::new(),
            ),
        };
        self.node.set_cache(Some(calls));
        self.clone()
    }

    /// The same as [`cache`](Self::cache): Weft keeps partitions in memory and spills them to
    /// disk past the node's bound, which is Spark's `MEMORY_AND_DISK`.
    pub fn persist(&self) -> Dataset<T> {
        self.cache()
    }

    /// Stop keeping this dataset: later actions compute it again. Its blocks are dropped when
    /// the next action starts.
    pub fn unpersist(&self) -> Dataset<T> {
        if self.node.set_cache(None) {
            UNPERSISTED.with(|u| u.borrow_mut().push(self.node.id()));
        }
        self.clone()
    }
}
