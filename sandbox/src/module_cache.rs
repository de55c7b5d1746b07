//! An on-disk cache of compiled modules, so that a module is compiled once per machine rather
//! than once per process.
//!
//! Compiling a job with Cranelift costs 0.2–0.5 s on two cores, every time `weft run` starts or a
//! node restarts. Modules are content-addressed, so the machine code wasmtime produces for one
//! module on one engine configuration never changes: it is written here after the first
//! compilation (`Module::serialize`) and mapped back in later (`Module::deserialize_file`, a few
//! milliseconds).
//!
//! Entries are named by the SHA-256 of the module's bytes and a hash of everything in the engine
//! that affects the machine code (wasmtime's version, configuration and the CPU features it
//! targets), so an upgrade or a configuration change simply misses. Writes go to a temporary file
//! that is renamed into place, so a reader never sees half an entry; an entry that fails to load
//! is removed and the module compiled again.
//!
//! The cost of trusting it: loading an entry runs its machine code unchecked, so whoever can write
//! the directory can run code in this process. The directory is created private (mode 0700) and
//! is not used when other users may write to it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory of compiled modules.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
}

impl ModuleCache {
    /// Use (creating it if needed) `dir` as the cache.
    ///
    /// Fails if the directory cannot be created, or is writable by users other than its owner.
    pub fn open(dir: &Path) -> Result<ModuleCache, String> {
        let err = |e: std::io::Error| format!("module cache {}: {e}", dir.display());
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(err)?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir).map_err(err)?.permissions().mode();
            if mode & 0o022 != 0 {
                return Err(format!(
                    "module cache {}: other users may write to it (mode {:o}); compiled code \
                     there would run unchecked, so it is not used",
                    dir.display(),
                    mode & 0o777
                ));
            }
        }
        Ok(ModuleCache { dir: dir.to_path_buf() })
    }

    /// The default location: `$WEFT_CACHE_DIR/modules`, else `$XDG_CACHE_HOME/weft/modules`, else
    /// `$HOME/.cache/weft/modules`; `None` when none of these is set.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = var("WEFT_CACHE_DIR") {
            return Some(dir.join("modules"));
        }
        let cache = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))?;
        Some(cache.join("weft").join("modules"))
    }

    fn entry(&self, engine: &wasmtime::Engine, module_hash: &str) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir.join(format!("{module_hash}-{:016x}.cwasm", hasher.finish()))
    }

    /// The module compiled earlier for this engine, if the cache holds it.
    pub(crate) fn load(
        &self,
        engine: &wasmtime::Engine,
        module_hash: &str,
    ) -> Option<wasmtime::Module> {
        let path = self.entry(engine, module_hash);
        if !path.exists() {
            return None;
        }
        // SAFETY: entries are written only by `store` below, into a directory checked in `open` to
        // be writable by this user alone; wasmtime checks the header (version, configuration)
        // itself and refuses an entry built for another engine.
        match unsafe { wasmtime::Module::deserialize_file(engine, &path) } {
            Ok(module) => Some(module),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "dropping a cached module");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Keep `module` for next time; a failure is logged, not returned (the cache is an
    /// optimisation).
    pub(crate) fn store(
        &self,
        engine: &wasmtime::Engine,
        module_hash: &str,
        module: &wasmtime::Module,
    ) {
        let path = self.entry(engine, module_hash);
        // Unique among processes and threads, so that concurrent stores never share a file.
        static STORES: AtomicU64 = AtomicU64::new(0);
        let n = STORES.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
        let written = module
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| std::fs::write(&tmp, bytes).map_err(|e| e.to_string()))
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), %error, "cannot cache a compiled module");
        }
    }
}
