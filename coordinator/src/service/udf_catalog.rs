//! The registry as a job's [`UdfCatalog`]: UDF modules by name (`TENANT/NAME[@VERSION]`) or by
//! hash, as the job's tenant may see them, with the signatures each module declares.
//!
//! Visibility is the registry's and `submit`'s: a tenant's own names and public ones, modules it
//! uploaded by hash; anything else is "no module", worded as for one that does not exist.
//! Signatures are read by running the module's `weft_udf_signatures` in a sandbox on the
//! coordinator, once per module and coordinator process (the compiled code comes from the
//! compiled-module cache after the first time).

use super::api::CoordinatorApi;
use super::{ApiError, Principal};
use crate::udfs::{UdfCatalog, UdfModuleEntry};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use weft_abi::udf::UdfSignature;

/// Most modules whose signatures are kept in memory (they are small; this bounds a flood of
/// distinct modules).
const SIGNATURES_KEPT: usize = 4096;

/// Signatures read so far, by module hash.
#[derive(Default)]
pub(crate) struct SignatureCache(Mutex<HashMap<String, Arc<Vec<UdfSignature>>>>);

/// A job's view of the registry.
pub(crate) struct RegistryCatalog {
    pub(crate) api: Weak<CoordinatorApi>,
    pub(crate) principal: Principal,
}

impl UdfCatalog for RegistryCatalog {
    fn find(&mut self, reference: &str) -> Result<UdfModuleEntry, String> {
        let api = self.api.upgrade().ok_or("the coordinator is shutting down")?;
        api.udf_module(&self.principal, reference)
            .map_err(|e| format!("UDF module {reference}: {e}"))
    }
}

fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl CoordinatorApi {
    /// The UDF module `reference` stands for, for `p` (blocking: may compile it).
    pub(crate) fn udf_module(
        &self,
        p: &Principal,
        reference: &str,
    ) -> Result<UdfModuleEntry, ApiError> {
        let (name, hash) = if is_hash(reference) {
            let hash = reference.to_ascii_lowercase();
            if !self.has_module(p, &hash)? {
                return Err(ApiError::NotFound(format!("no module {reference}")));
            }
            (hash.clone(), hash)
        } else {
            self.resolve_named(p, reference)?
        };
        let signatures = self.udf_signatures(&hash)?;
        Ok(UdfModuleEntry { hash, name, signatures })
    }

    /// What module `hash` declares (blocking).
    pub(crate) fn udf_signatures(&self, hash: &str) -> Result<Arc<Vec<UdfSignature>>, ApiError> {
        let cache = &self.signatures.0;
        if let Some(found) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(hash) {
            return Ok(found.clone());
        }
        let module = self.modules.compiled(&self.engine, hash).map_err(ApiError::Invalid)?;
        module.require_udf().map_err(|e| ApiError::Invalid(e.to_string()))?;
        let read =
            weft_sandbox::udf_signatures(&module).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let read = Arc::new(read);
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= SIGNATURES_KEPT {
            cache.clear();
        }
        cache.insert(hash.to_string(), read.clone());
        Ok(read)
    }
}
