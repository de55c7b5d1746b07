//! A job's broadcast values, as its driver sent them: kept by the coordinator for the job's
//! life, named in every task's description by reference only, served to nodes by hash (and to
//! the embedded engine's workers directly).

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use weft_abi::limits::{MAX_BROADCAST_BYTES, MAX_BROADCASTS};
use weft_abi::plan::BroadcastValue;
use weft_abi::task::BroadcastRef;
use weft_sandbox::BroadcastBlobs;

/// One job's broadcast values.
#[derive(Default)]
pub struct BroadcastStore {
    values: Mutex<HashMap<u64, (BroadcastRef, Bytes)>>,
}

impl BroadcastStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (BroadcastRef, Bytes)>> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take the values a driver sent with an action, within the bounds of
    /// [`weft_abi::limits`]; a value already held under its id is not replaced.
    pub fn add(&self, values: Vec<BroadcastValue>) -> Result<(), String> {
        let mut held = self.lock();
        for v in values {
            if v.bytes.len() > MAX_BROADCAST_BYTES {
                return Err(format!(
                    "broadcast {} is {} MiB, more than the {} MiB limit",
                    v.id,
                    v.bytes.len() >> 20,
                    MAX_BROADCAST_BYTES >> 20
                ));
            }
            if held.len() >= MAX_BROADCASTS && !held.contains_key(&v.id) {
                return Err(format!("a job may broadcast at most {MAX_BROADCASTS} values"));
            }
            let hash = weft_wire::pki::sha256_hex(&v.bytes);
            let r = BroadcastRef { id: v.id, hash, len: v.bytes.len() as u64 };
            held.entry(v.id).or_insert((r, Bytes::from(v.bytes)));
        }
        Ok(())
    }

    /// References to every value, for task descriptions.
    pub fn refs(&self) -> Vec<BroadcastRef> {
        let mut refs: Vec<BroadcastRef> = self.lock().values().map(|(r, _)| r.clone()).collect();
        refs.sort_by_key(|r| r.id);
        refs
    }

    /// The value with this content hash.
    pub fn by_hash(&self, hash: &str) -> Option<Bytes> {
        self.lock().values().find(|(r, _)| r.hash == hash).map(|(_, b)| b.clone())
    }

    /// Forget every value (the job ended).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

impl BroadcastBlobs for BroadcastStore {
    fn blob(&self, r: &BroadcastRef) -> Option<Bytes> {
        self.lock().get(&r.id).filter(|(held, _)| held.hash == r.hash).map(|(_, b)| b.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_by_id_served_by_hash_and_bounded() {
        let store = BroadcastStore::default();
        store.add(vec![BroadcastValue { id: 1, bytes: b"one".to_vec() }]).unwrap();
        let refs = store.refs();
        assert_eq!((refs[0].id, refs[0].len), (1, 3));
        assert_eq!(store.by_hash(&refs[0].hash).as_deref(), Some(&b"one"[..]));
        assert_eq!(store.blob(&refs[0]).as_deref(), Some(&b"one"[..]));
        let wrong = BroadcastRef { hash: "0".repeat(64), ..refs[0].clone() };
        assert!(store.blob(&wrong).is_none(), "a reference must match the value's hash");
        let huge = BroadcastValue { id: 2, bytes: vec![0; MAX_BROADCAST_BYTES + 1] };
        assert!(store.add(vec![huge]).unwrap_err().contains("MiB limit"));
        store.clear();
        assert!(store.refs().is_empty());
    }
}
