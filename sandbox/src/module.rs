//! A module built with the SDK — a job, a UDF module, or both: validated, compiled and
//! pre-linked once, instantiated once per task (and once per task that calls its UDFs).

use crate::engine::{Engine, SandboxPolicy, Ticker};
use crate::error::ModuleError;
use crate::host_fns;
use crate::store::SandboxState;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use weft_abi::guest::{EXPORT_ALLOC, EXPORT_RUN_TASK};
use weft_abi::udf::{EXPORT_UDF_CALL, EXPORT_UDF_SIGNATURES};

fn missing(name: &str, what: &str) -> ModuleError {
    ModuleError::NotAJob(format!(
        "the module does not export `{name}` ({what}); build a Rust program that uses the `weft` \
         SDK with `cargo build --release --target wasm32-wasip1`"
    ))
}

/// A module's content address: the SHA-256 of its bytes, in lowercase hex.
pub fn module_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A compiled Weft job, ready to be instantiated by any number of threads.
#[derive(Clone)]
pub struct JobModule {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) pre: wasmtime::InstancePre<SandboxState>,
    pub(crate) policy: Arc<SandboxPolicy>,
    hash: String,
    /// Keeps the engine's epoch ticking for as long as the module can run (deadlines need it).
    _ticker: Arc<Ticker>,
}

impl JobModule {
    /// Validate and compile a job module (once per job; tasks then only instantiate it), or load
    /// it from the engine's module cache when it was compiled before.
    pub fn new(engine: &Engine, bytes: &[u8]) -> Result<JobModule, ModuleError> {
        let module = JobModule::compile(engine, bytes)?;
        module.require_job()?;
        Ok(module)
    }

    /// Validate and compile a module built with the SDK, a job or a UDF module (or both): it
    /// must export memory and the Weft entry points, and import nothing but WASI and the `weft`
    /// functions. [`require_job`](Self::require_job) and [`require_udf`](Self::require_udf)
    /// check what it is.
    pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<JobModule, ModuleError> {
        if !bytes.starts_with(b"\0asm") {
            return Err(ModuleError::NotWasm);
        }
        let hash = module_hash(bytes);
        let cached = engine.module_cache.as_ref().and_then(|c| c.load(&engine.inner, &hash));
        let module = match cached {
            Some(module) => module,
            None => {
                let module = wasmtime::Module::new(&engine.inner, bytes)
                    .map_err(|e| ModuleError::Invalid(format!("{e:#}")))?;
                if let Some(cache) = &engine.module_cache {
                    cache.store(&engine.inner, &hash, &module);
                }
                module
            }
        };
        for (name, what) in [("memory", "a memory"), (EXPORT_ALLOC, "the Weft task entry points")] {
            if module.get_export(name).is_none() {
                return Err(missing(name, what));
            }
        }
        let linker = host_fns::linker(&engine.inner)
            .map_err(|e| ModuleError::Engine(format!("cannot set up host functions: {e:#}")))?;
        let pre = linker.instantiate_pre(&module).map_err(|e| {
            ModuleError::NotAJob(format!(
                "{e:#} (a Weft job may import only WASI preview 1 and the `weft` host functions)"
            ))
        })?;
        Ok(JobModule {
            engine: engine.inner.clone(),
            pre,
            policy: Arc::new(SandboxPolicy::default()),
            hash,
            _ticker: engine.ticker.clone(),
        })
    }

    /// Whether the module exports `name`.
    pub fn has_export(&self, name: &str) -> bool {
        self.pre.module().get_export(name).is_some()
    }

    /// Check that the module is a job: it has a `main` and runs tasks.
    pub fn require_job(&self) -> Result<(), ModuleError> {
        for (name, what) in
            [("_start", "a `main` function"), (EXPORT_RUN_TASK, "the Weft task entry points")]
        {
            if !self.has_export(name) {
                return Err(missing(name, what));
            }
        }
        Ok(())
    }

    /// Check that the module is a UDF module (made with `weft::udf!`).
    pub fn require_udf(&self) -> Result<(), ModuleError> {
        for name in [EXPORT_UDF_CALL, EXPORT_UDF_SIGNATURES] {
            if !self.has_export(name) {
                return Err(ModuleError::NotUdf(format!(
                    "the module does not export `{name}` (declare its functions with \
                     `weft::udf!`)"
                )));
            }
        }
        Ok(())
    }

    /// The module's content address: SHA-256 of its bytes, in hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The same module with other sandbox limits.
    pub fn with_policy(mut self, policy: SandboxPolicy) -> JobModule {
        self.policy = Arc::new(policy);
        self
    }

    /// The limits its sandboxes run under.
    pub fn policy(&self) -> &SandboxPolicy {
        &self.policy
    }
}
