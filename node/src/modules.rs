//! The modules a node has compiled (jobs' and UDF modules alike), by hash: fetched from the coordinator the first time a task
//! needs one (hash checked), compiled once (or loaded from the node's compiled-module cache) on a
//! blocking thread, and kept for the next tasks.
//!
//! Loading one module never holds up tasks of another: each hash has a cell of its own, and only
//! tasks that need the same module wait for its load. At most [`MODULES_KEPT`] compiled modules
//! are kept in memory (least recently used go first; the on-disk cache keeps them cheap to load
//! again).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use weft_sandbox::{Engine, JobModule};

/// Compiled modules kept in memory.
pub const MODULES_KEPT: usize = 32;

type Cell = Arc<OnceCell<JobModule>>;

/// Compiled modules by hash.
pub(crate) struct ModuleLoader {
    engine: Arc<Engine>,
    /// Hash → its cell, and when it was last used (a counter).
    cells: Mutex<HashMap<String, (Cell, u64)>>,
    clock: Mutex<u64>,
}

/// What a load did, for the node's counters.
pub(crate) struct Loaded {
    pub(crate) module: JobModule,
    /// Bytes fetched from the coordinator (0 if it was loaded before).
    pub(crate) fetched: u64,
}

impl ModuleLoader {
    pub(crate) fn new(engine: Arc<Engine>) -> ModuleLoader {
        ModuleLoader { engine, cells: Mutex::default(), clock: Mutex::new(0) }
    }

    fn cell(&self, hash: &str) -> Cell {
        let tick = {
            let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
            *clock += 1;
            *clock
        };
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let cell = {
            let entry = cells.entry(hash.to_string()).or_insert_with(|| (Cell::default(), tick));
            entry.1 = tick;
            entry.0.clone()
        };
        if cells.len() > MODULES_KEPT {
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

    /// The compiled module for `hash`; `fetch` gets its bytes if this node does not have it.
    pub(crate) async fn get<F, Fut>(&self, hash: &str, fetch: F) -> Result<Loaded, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, String>>,
    {
        let cell = self.cell(hash);
        let mut fetched = 0;
        let module = cell
            .get_or_try_init(|| async {
                let wasm = fetch().await?;
                let actual = weft_sandbox::module_hash(&wasm);
                if actual != hash {
                    return Err(format!("received module hashes to {actual}, expected {hash}"));
                }
                fetched = wasm.len() as u64;
                let engine = self.engine.clone();
                tokio::task::spawn_blocking(move || JobModule::compile(&engine, &wasm))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())
            })
            .await?
            .clone();
        Ok(Loaded { module, fetched })
    }

    /// Modules held in memory.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cells.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_load_of_one_module_does_not_hold_up_another() {
        // Regression: one async lock was held across every module's fetch and compile, so a
        // task of module B waited for module A's download.
        let loader = Arc::new(ModuleLoader::new(Arc::new(Engine::new().unwrap())));
        let slow = {
            let loader = loader.clone();
            tokio::spawn(async move {
                loader
                    .get("a".repeat(64).as_str(), || async {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Err("never".to_string())
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A module that fails to fetch fails at once, while the other is still loading.
        let other = tokio::time::timeout(
            Duration::from_secs(5),
            loader.get("b".repeat(64).as_str(), || async { Err("no such module".to_string()) }),
        )
        .await
        .expect("the second load waited for the first");
        assert_eq!(other.err().as_deref(), Some("no such module"));
        // Bytes that do not hash to the name are refused.
        let wrong = loader.get("c".repeat(64).as_str(), || async { Ok(b"\0asm".to_vec()) }).await;
        assert!(wrong.err().unwrap().contains("hashes to"));
        slow.abort();
    }

    #[tokio::test]
    async fn at_most_a_bounded_number_of_modules_are_kept() {
        let loader = ModuleLoader::new(Arc::new(Engine::new().unwrap()));
        for i in 0..MODULES_KEPT + 10 {
            let hash = format!("{i:064}");
            let _ = loader.get(&hash, || async { Err("none".to_string()) }).await;
        }
        assert_eq!(loader.len(), MODULES_KEPT);
    }
}
