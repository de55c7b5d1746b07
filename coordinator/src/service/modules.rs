//! Content-addressed module storage: modules stored once under `state-dir/modules/<sha256>.wasm`
//! (the hash is checked on upload), the most recently used kept in memory, and compiled once
//! for drivers.
//!
//! Both in-memory caches are bounded — [`BYTES_KEPT`] bytes of modules, [`COMPILED_KEPT`]
//! compiled modules, least recently used first out — so a coordinator that sees many modules
//! over its life does not grow with them; the files stay, and a module dropped from memory is
//! read (and, for a driver, loaded from the compiled-module cache) again when next needed. Every
//! method here may read or write files: call them off the async threads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use weft_sandbox::{Engine, JobModule, module_hash};

/// Bytes of modules kept in memory.
pub const BYTES_KEPT: u64 = 256 << 20;
/// Compiled modules kept in memory.
pub const COMPILED_KEPT: usize = 16;

/// A small least-recently-used map.
struct Lru<V> {
    entries: HashMap<String, (V, u64, u64)>,
    clock: u64,
    weight: u64,
    max_weight: u64,
}

impl<V: Clone> Lru<V> {
    fn new(max_weight: u64) -> Lru<V> {
        Lru { entries: HashMap::new(), clock: 0, weight: 0, max_weight }
    }

    fn get(&mut self, key: &str) -> Option<V> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|(v, used, _)| {
            *used = clock;
            v.clone()
        })
    }

    fn put(&mut self, key: &str, value: V, weight: u64) {
        self.clock += 1;
        if let Some((_, _, old)) = self.entries.insert(key.to_string(), (value, self.clock, weight))
        {
            self.weight -= old;
        }
        self.weight += weight;
        while self.weight > self.max_weight && self.entries.len() > 1 {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used, _))| *used)
                .map(|(k, _)| k.clone())
                .expect("not empty");
            if let Some((_, _, w)) = self.entries.remove(&oldest) {
                self.weight -= w;
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Content-addressed module storage.
pub struct ModuleStore {
    dir: PathBuf,
    bytes: Mutex<Lru<Arc<Vec<u8>>>>,
    compiled: Mutex<Lru<JobModule>>,
}

impl ModuleStore {
    /// Modules under `dir` (created if needed).
    pub fn new(dir: PathBuf) -> std::io::Result<ModuleStore> {
        std::fs::create_dir_all(&dir)?;
        Ok(ModuleStore {
            dir,
            bytes: Mutex::new(Lru::new(BYTES_KEPT)),
            compiled: Mutex::new(Lru::new(COMPILED_KEPT as u64)),
        })
    }

    fn path(&self, hash: &str) -> Option<PathBuf> {
        // Only well-formed hashes become file names.
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.join(format!("{hash}.wasm")))
    }

    /// The module stored under `hash`, if any.
    pub fn get(&self, hash: &str) -> Option<Arc<Vec<u8>>> {
        if let Some(b) = self.bytes.lock().unwrap_or_else(|p| p.into_inner()).get(hash) {
            return Some(b);
        }
        let bytes = Arc::new(std::fs::read(self.path(hash)?).ok()?);
        let weight = bytes.len() as u64;
        self.bytes.lock().unwrap_or_else(|p| p.into_inner()).put(hash, bytes.clone(), weight);
        Some(bytes)
    }

    /// Whether a module is stored under `hash`.
    pub fn has(&self, hash: &str) -> bool {
        self.path(hash).is_some_and(|p| p.is_file())
    }

    /// Store `wasm` if it hashes to `hash`.
    pub fn put(&self, hash: &str, wasm: Vec<u8>) -> Result<(), String> {
        let actual = module_hash(&wasm);
        if actual != hash {
            return Err(format!("the module's SHA-256 is {actual}, not {hash}"));
        }
        let path = self.path(hash).ok_or("bad module hash")?;
        // Unique per upload: two clients may upload the same module at once.
        static UPLOADS: AtomicU64 = AtomicU64::new(0);
        let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
        std::fs::write(&tmp, &wasm).and_then(|_| std::fs::rename(&tmp, &path)).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot store the module: {e}")
        })?;
        let weight = wasm.len() as u64;
        self.bytes.lock().unwrap_or_else(|p| p.into_inner()).put(hash, Arc::new(wasm), weight);
        Ok(())
    }

    /// The module compiled (a job's or a UDF module: callers check which they need).
    pub fn compiled(&self, engine: &Engine, hash: &str) -> Result<JobModule, String> {
        if let Some(m) = self.compiled.lock().unwrap_or_else(|p| p.into_inner()).get(hash) {
            return Ok(m);
        }
        let wasm =
            self.get(hash).ok_or_else(|| format!("unknown module {hash}; upload it first"))?;
        let module = JobModule::compile(engine, &wasm).map_err(|e| e.to_string())?;
        self.compiled.lock().unwrap_or_else(|p| p.into_inner()).put(hash, module.clone(), 1);
        Ok(module)
    }

    /// Modules held in memory (bytes, compiled).
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        let bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner()).len();
        (bytes, self.compiled.lock().unwrap_or_else(|p| p.into_inner()).len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_checked_against_their_hash_and_memory_holds_a_bounded_number() {
        // Regression: every module ever uploaded stayed in memory.
        let dir = tempfile::tempdir().unwrap();
        let store = ModuleStore::new(dir.path().join("modules")).unwrap();
        let big = 8 << 20;
        for i in 0..40u8 {
            let wasm = vec![i; big];
            store.put(&module_hash(&wasm), wasm).unwrap();
        }
        let (bytes, _) = store.held();
        assert!((bytes as u64) * (big as u64) <= BYTES_KEPT, "{bytes} modules held");
        // Every module is still there, read from its file.
        let first = vec![0u8; big];
        assert_eq!(*store.get(&module_hash(&first)).unwrap(), first);
        assert!(store.put(&"0".repeat(64), b"\0asm".to_vec()).unwrap_err().contains("SHA-256"));
        assert!(store.get("../../etc/passwd").is_none());
    }

    #[test]
    fn the_same_module_uploaded_twice_at_once_is_stored() {
        // Regression: both uploads wrote and renamed the same temporary file.
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ModuleStore::new(dir.path().join("modules")).unwrap());
        let wasm = vec![7u8; 4 << 20];
        let hash = module_hash(&wasm);
        let uploads: Vec<_> = (0..4)
            .map(|_| {
                let (store, wasm, hash) = (store.clone(), wasm.clone(), hash.clone());
                std::thread::spawn(move || store.put(&hash, wasm))
            })
            .collect();
        for upload in uploads {
            upload.join().unwrap().unwrap();
        }
        assert!(store.has(&hash));
        let left = std::fs::read_dir(dir.path().join("modules")).unwrap().count();
        assert_eq!(left, 1, "temporary files left behind");
    }
}
