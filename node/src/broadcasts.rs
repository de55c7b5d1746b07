//! The broadcast values a node holds, by content hash: fetched from the coordinator the first
//! time one of its tasks needs one (hash checked), then kept for the job's later tasks, so a
//! value crosses the network once per node however many tasks read it.
//!
//! Like the module loader, each hash has a cell of its own: tasks that need the same value wait
//! for one fetch, others are not held up. At most [`BROADCASTS_KEPT`] values are kept (least
//! recently used go first; a task needing one again fetches it again).

use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use weft_abi::task::BroadcastRef;

/// Broadcast values kept in memory.
pub const BROADCASTS_KEPT: usize = 64;

type Cell = Arc<OnceCell<Bytes>>;
/// Hash → its cell and when it was last used (a counter).
type Cells = HashMap<String, (Cell, u64)>;

/// Broadcast values by hash.
#[derive(Default)]
pub(crate) struct BroadcastCache {
    /// The cells, and the use counter.
    cells: Mutex<(Cells, u64)>,
}

impl BroadcastCache {
    fn cell(&self, hash: &str) -> Cell {
        let mut guard = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let (cells, clock) = &mut *guard;
        *clock += 1;
        let tick = *clock;
        let cell = {
            let entry = cells.entry(hash.to_string()).or_insert_with(|| (Cell::default(), tick));
            entry.1 = tick;
            entry.0.clone()
        };
        if cells.len() > BROADCASTS_KEPT {
            let oldest = cells
                .iter()
                .filter(|(h, _)| h.as_str() != hash)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(h, _)| h.clone());
            if let Some(h) = oldest {
                cells.remove(&h);
            }
        }
        cell
    }

    /// The value `r` names; `fetch` gets its bytes if this node does not have them. Returns the
    /// bytes and how many were fetched now (0 if they were here).
    pub(crate) async fn get<F, Fut>(
        &self,
        r: &BroadcastRef,
        fetch: F,
    ) -> Result<(Bytes, u64), String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, String>>,
    {
        let cell = self.cell(&r.hash);
        let mut fetched = 0;
        let bytes = cell
            .get_or_try_init(|| async {
                let bytes = fetch().await?;
                let actual = weft_wire::pki::sha256_hex(&bytes);
                if actual != r.hash {
                    return Err(format!(
                        "received broadcast hashes to {actual}, expected {}",
                        r.hash
                    ));
                }
                fetched = bytes.len() as u64;
                Ok(Bytes::from(bytes))
            })
            .await?
            .clone();
        Ok((bytes, fetched))
    }

    /// The value `r` names, if this node holds it.
    pub(crate) fn held(&self, r: &BroadcastRef) -> Option<Bytes> {
        let guard = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.get(&r.hash).and_then(|(cell, _)| cell.get().cloned())
    }
}

impl weft_sandbox::BroadcastBlobs for BroadcastCache {
    fn blob(&self, r: &BroadcastRef) -> Option<Bytes> {
        self.held(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn reference(bytes: &[u8]) -> BroadcastRef {
        BroadcastRef { id: 1, hash: weft_wire::pki::sha256_hex(bytes), len: bytes.len() as u64 }
    }

    #[tokio::test]
    async fn a_value_is_fetched_once_and_checked_against_its_hash() {
        let cache = BroadcastCache::default();
        let value = b"lookup table".to_vec();
        let r = reference(&value);
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(value.clone())
        };
        let (first, fetched) = cache.get(&r, fetch).await.unwrap();
        assert_eq!((&first[..], fetched), (&value[..], value.len() as u64));
        let (second, fetched) = cache.get(&r, || async { Ok(value.clone()) }).await.unwrap();
        assert_eq!((&second[..], fetched), (&value[..], 0));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(cache.held(&r).as_deref(), Some(&value[..]));
        // Bytes that are not the value named are refused, and not kept.
        let other = reference(b"something else");
        let e = cache.get(&other, || async { Ok(b"tampered".to_vec()) }).await.unwrap_err();
        assert!(e.contains("hashes to"), "{e}");
        assert!(cache.held(&other).is_none());
    }
}
