//! Binding a job's UDFs: what the host does when a driver calls `ctx.udf(module, function)`.
//!
//! The driver names a module and a function and says which types it will pass and expect. The
//! host finds the module in a [`UdfCatalog`] (the registry on a cluster, files given to
//! `weft run --udf` on the embedded engine), checks the call against the signatures the module
//! itself declares, and gives the module a slot in the job ([`JobUdfs`]). Every task of the job
//! then carries the job's modules by hash, so that a node fetches and compiles each one once,
//! and the task's calls name their slot. A bad call fails in the driver, before any task runs.

use std::collections::HashMap;
use std::sync::Arc;
use weft_abi::udf::{
    MAX_UDF_MODULES, UdfBinding, UdfLookup, UdfModuleRef, UdfSignature, check_call,
};
use weft_sandbox::{Engine, JobModule, udf_signatures};

/// A UDF module as a catalog finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct UdfModuleEntry {
    /// Its content address.
    pub hash: String,
    /// Its name as resolved (`TENANT/NAME@VERSION`), for messages and labels.
    pub name: String,
    /// The functions it declares.
    pub signatures: Arc<Vec<UdfSignature>>,
}

/// Where a job's UDF modules are found, as the job's tenant may see them.
pub trait UdfCatalog: Send {
    /// The module `reference` names; an error says why there is none (a missing module and one
    /// the tenant may not see get the same answer).
    fn find(&mut self, reference: &str) -> Result<UdfModuleEntry, String>;
}

/// The catalog of an engine without a registry.
pub struct NoUdfs;

impl UdfCatalog for NoUdfs {
    fn find(&mut self, reference: &str) -> Result<UdfModuleEntry, String> {
        let name = reference.split('@').next().unwrap_or(reference);
        Err(format!(
            "no UDF module {reference}: this engine has no module registry (with `weft run`, \
             give the module's file with --udf {name}=FILE.wasm)"
        ))
    }
}

/// The UDF modules one job bound, by slot.
pub struct JobUdfs {
    catalog: Box<dyn UdfCatalog>,
    modules: Vec<UdfModuleRef>,
}

impl JobUdfs {
    /// A job that finds its UDF modules in `catalog`.
    pub fn new(catalog: Box<dyn UdfCatalog>) -> JobUdfs {
        JobUdfs { catalog, modules: Vec::new() }
    }

    /// Bind `lookup`: find its module, check the call, give the module a slot (the same for
    /// every function of one module).
    pub fn bind(&mut self, lookup: &UdfLookup) -> Result<UdfBinding, String> {
        let entry = self.catalog.find(&lookup.module)?;
        let function = check_call(&entry.name, &entry.signatures, lookup)?;
        let slot = match self.modules.iter().find(|m| m.hash == entry.hash) {
            Some(m) => m.slot,
            None => {
                if self.modules.len() >= MAX_UDF_MODULES {
                    return Err(format!(
                        "a job may bind at most {MAX_UDF_MODULES} UDF modules; {} would be one \
                         more",
                        entry.name
                    ));
                }
                let slot = self.modules.len() as u32;
                self.modules.push(UdfModuleRef {
                    slot,
                    hash: entry.hash,
                    name: entry.name.clone(),
                });
                slot
            }
        };
        Ok(UdfBinding { slot, function, module: entry.name })
    }

    /// The modules bound so far, for every task.
    pub fn modules(&self) -> &[UdfModuleRef] {
        &self.modules
    }
}

/// UDF modules given as files (`weft run --udf NAME=FILE.wasm`), compiled once.
pub struct LocalUdfCatalog {
    /// By name (without a version).
    entries: HashMap<String, (UdfModuleEntry, JobModule)>,
}

impl LocalUdfCatalog {
    /// Compile each `(name, wasm)` on `engine` and read its signatures.
    pub fn new(engine: &Engine, files: Vec<(String, Vec<u8>)>) -> Result<LocalUdfCatalog, String> {
        let mut entries = HashMap::new();
        for (name, wasm) in files {
            let failed = |e: String| format!("UDF module {name}: {e}");
            let module = JobModule::compile(engine, &wasm).map_err(|e| failed(e.to_string()))?;
            module.require_udf().map_err(|e| failed(e.to_string()))?;
            let signatures = udf_signatures(&module).map_err(|e| failed(e.to_string()))?;
            let hash = module.hash().to_string();
            let shown = format!("{name}@{}", &hash[..12]);
            let entry = UdfModuleEntry { hash, name: shown, signatures: Arc::new(signatures) };
            entries.insert(name, (entry, module));
        }
        Ok(LocalUdfCatalog { entries })
    }

    /// The compiled modules, by hash (for the workers).
    pub fn compiled(&self) -> HashMap<String, JobModule> {
        self.entries.values().map(|(e, m)| (e.hash.clone(), m.clone())).collect()
    }
}

impl UdfCatalog for LocalUdfCatalog {
    fn find(&mut self, reference: &str) -> Result<UdfModuleEntry, String> {
        let (name, version) = match reference.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (reference, None),
        };
        let missing = || format!("no UDF module {reference} (given with --udf: {})", self.names());
        let (entry, _) = self.entries.get(name).ok_or_else(missing)?;
        match version {
            None | Some("latest") => Ok(entry.clone()),
            Some(v) if v.len() >= 12 && entry.hash.starts_with(v) => Ok(entry.clone()),
            Some(v) => Err(format!(
                "UDF module {name} given with --udf is version {}, not {v}",
                &entry.hash[..12]
            )),
        }
    }
}

impl LocalUdfCatalog {
    fn names(&self) -> String {
        let mut names: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names.is_empty() { "none".into() } else { names.join(", ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_abi::udf::DataType;

    struct Fixed(Vec<UdfModuleEntry>);

    impl UdfCatalog for Fixed {
        fn find(&mut self, reference: &str) -> Result<UdfModuleEntry, String> {
            let name = reference.split('@').next().unwrap_or_default();
            self.0
                .iter()
                .find(|e| e.name.starts_with(name))
                .cloned()
                .ok_or_else(|| format!("no module {reference}"))
        }
    }

    fn entry(name: &str, hash: &str, functions: &[&str]) -> UdfModuleEntry {
        let signatures = functions
            .iter()
            .map(|f| UdfSignature {
                name: f.to_string(),
                input: DataType::Utf8,
                output: DataType::UInt64,
                doc: String::new(),
            })
            .collect();
        UdfModuleEntry { hash: hash.into(), name: name.into(), signatures: Arc::new(signatures) }
    }

    fn lookup(module: &str, function: &str, input: DataType) -> UdfLookup {
        UdfLookup {
            module: module.into(),
            function: function.into(),
            input,
            output: DataType::UInt64,
        }
    }

    #[test]
    fn each_module_gets_one_slot_and_bad_calls_bind_nothing() {
        let catalog =
            Fixed(vec![entry("a/geo@1", "h1", &["len", "hash"]), entry("b/x@2", "h2", &["f"])]);
        let mut udfs = JobUdfs::new(Box::new(catalog));
        let len = udfs.bind(&lookup("a/geo", "len", DataType::Utf8)).unwrap();
        let hash = udfs.bind(&lookup("a/geo@latest", "hash", DataType::Utf8)).unwrap();
        let f = udfs.bind(&lookup("b/x", "f", DataType::Utf8)).unwrap();
        assert_eq!((len.slot, len.function), (0, 0));
        assert_eq!((hash.slot, hash.function), (0, 1));
        assert_eq!((f.slot, f.function, f.module.as_str()), (1, 0, "b/x@2"));
        let wrong = udfs.bind(&lookup("a/geo", "len", DataType::Int64)).unwrap_err();
        assert!(wrong.contains("declares len(String) -> u64"), "{wrong}");
        assert!(
            udfs.bind(&lookup("c/none", "f", DataType::Utf8)).unwrap_err().contains("no module")
        );
        let hashes: Vec<&str> = udfs.modules().iter().map(|m| m.hash.as_str()).collect();
        assert_eq!(hashes, ["h1", "h2"]);
    }

    #[test]
    fn a_job_binds_a_bounded_number_of_modules() {
        let many = (0..=MAX_UDF_MODULES)
            .map(|i| entry(&format!("t/m{i:03}@v"), &format!("h{i}"), &["f"]))
            .collect();
        let mut udfs = JobUdfs::new(Box::new(Fixed(many)));
        for i in 0..MAX_UDF_MODULES {
            udfs.bind(&lookup(&format!("t/m{i:03}"), "f", DataType::Utf8)).unwrap();
        }
        let over = udfs.bind(&lookup(&format!("t/m{MAX_UDF_MODULES:03}"), "f", DataType::Utf8));
        assert!(over.unwrap_err().contains("at most"));
    }

    #[test]
    fn without_a_registry_the_answer_says_how_to_give_the_module() {
        let e = NoUdfs.find("acme/geo@latest").unwrap_err();
        assert!(e.contains("--udf acme/geo=FILE.wasm"), "{e}");
    }
}
