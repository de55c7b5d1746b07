//! Where a node keeps map outputs until their action ends: in memory up to a bound, then on disk
//! in the node's work directory.
//!
//! A spilled map output is one directory per output and one file per bucket, each file a
//! sequence of `u32` little-endian length + batch bytes, written to a temporary name and renamed,
//! so a reader never sees half a bucket. Released outputs are deleted from memory and disk.

use bytes::Bytes;
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use weft_wire::protocol::MapKey;

enum Stored {
    Memory { buckets: Arc<Vec<Vec<Bytes>>>, bytes: u64 },
    Disk { dir: PathBuf },
}

#[derive(Default)]
struct Inner {
    maps: HashMap<MapKey, Stored>,
    memory_bytes: u64,
}

/// Map outputs held by a node.
pub(crate) struct ShuffleStore {
    dir: PathBuf,
    memory_limit: u64,
    inner: Mutex<Inner>,
}

/// How a map output was stored.
pub(crate) struct StoreReceipt {
    /// Bytes per bucket.
    pub(crate) bucket_bytes: Vec<u64>,
    /// Bytes written to disk (0 if kept in memory).
    pub(crate) spilled: u64,
}

impl ShuffleStore {
    /// A store keeping up to `memory_limit` bytes in memory and spilling the rest under `dir`.
    pub(crate) fn new(dir: PathBuf, memory_limit: u64) -> Self {
        ShuffleStore { dir, memory_limit, inner: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep a map output (blocking: it may write files).
    pub(crate) fn put(
        &self,
        key: MapKey,
        buckets: Vec<Vec<Bytes>>,
    ) -> Result<StoreReceipt, String> {
        let bucket_bytes: Vec<u64> =
            buckets.iter().map(|b| b.iter().map(|x| x.len() as u64).sum()).collect();
        let total: u64 = bucket_bytes.iter().sum();
        {
            let mut inner = self.lock();
            if inner.memory_bytes + total <= self.memory_limit {
                inner.memory_bytes += total;
                let stored = Stored::Memory { buckets: Arc::new(buckets), bytes: total };
                if let Some(old) = inner.maps.insert(key, stored) {
                    forget(&mut inner, old);
                }
                return Ok(StoreReceipt { bucket_bytes, spilled: 0 });
            }
        }
        let dir = self.dir.join(dir_name(&key));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot spill to {}: {e}", dir.display()))?;
        for (i, bucket) in buckets.iter().enumerate() {
            let path = dir.join(format!("bucket-{i}"));
            let tmp = dir.join(format!(".bucket-{i}.tmp"));
            let write = || -> std::io::Result<()> {
                let mut out = BufWriter::new(std::fs::File::create(&tmp)?);
                for batch in bucket {
                    out.write_all(&(batch.len() as u32).to_le_bytes())?;
                    out.write_all(batch)?;
                }
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&tmp, &path)
            };
            write().map_err(|e| format!("cannot spill to {}: {e}", path.display()))?;
        }
        let mut inner = self.lock();
        match inner.maps.insert(key, Stored::Disk { dir: dir.clone() }) {
            // The same output stored again (a retried map task) was written over its old files:
            // the directory is the new copy's, so it must stay.
            Some(Stored::Disk { dir: old }) if old == dir => {}
            Some(old) => forget(&mut inner, old),
            None => {}
        }
        Ok(StoreReceipt { bucket_bytes, spilled: total })
    }

    /// The batches of one bucket of one map output, or `None` if this node does not hold it.
    pub(crate) fn bucket(&self, key: &MapKey, bucket: u32) -> Result<Option<Vec<Bytes>>, String> {
        let dir = match self.lock().maps.get(key) {
            None => return Ok(None),
            Some(Stored::Memory { buckets, .. }) => {
                return Ok(Some(buckets.get(bucket as usize).cloned().unwrap_or_default()));
            }
            Some(Stored::Disk { dir }) => dir.clone(),
        };
        let path = dir.join(format!("bucket-{bucket}"));
        let bytes = match std::fs::read(&path) {
            Ok(b) => Bytes::from(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(Vec::new())),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut batches = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len = bytes
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                .ok_or_else(|| format!("{}: truncated", path.display()))?;
            let batch = bytes
                .get(at + 4..at + 4 + len)
                .ok_or_else(|| format!("{}: truncated", path.display()))?;
            batches.push(bytes.slice_ref(batch));
            at += 4 + len;
        }
        Ok(Some(batches))
    }

    /// Drop the map outputs of one action of one job; returns how many went.
    pub(crate) fn release(&self, job: &str, action: u32) -> usize {
        let mut inner = self.lock();
        let keys: Vec<MapKey> =
            inner.maps.keys().filter(|k| k.job == job && k.action == action).cloned().collect();
        for key in &keys {
            if let Some(old) = inner.maps.remove(key) {
                forget(&mut inner, old);
            }
        }
        keys.len()
    }

    /// How many map outputs are held.
    pub(crate) fn len(&self) -> usize {
        self.lock().maps.len()
    }
}

/// Account for a stored output that is going away, deleting its files.
fn forget(inner: &mut Inner, stored: Stored) {
    match stored {
        Stored::Memory { bytes, .. } => inner.memory_bytes -= bytes,
        Stored::Disk { dir } => {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A directory name for a key: only letters, digits and `-` from the job id survive.
fn dir_name(key: &MapKey) -> String {
    let job: String = key
        .job
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    format!("{job}.a{}.s{}.p{}", key.action, key.stage, key.partition)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(job: &str, partition: u32) -> MapKey {
        MapKey { job: job.into(), action: 1, stage: 0, partition }
    }

    fn buckets(seed: u8) -> Vec<Vec<Bytes>> {
        vec![
            vec![Bytes::from(vec![seed; 10]), Bytes::from(vec![seed + 1; 3])],
            vec![],
            vec![Bytes::from(vec![seed; 70])],
        ]
    }

    #[test]
    fn outputs_past_the_memory_bound_spill_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = ShuffleStore::new(dir.path().to_path_buf(), 100);
        assert_eq!(store.put(key("job-1", 0), buckets(1)).unwrap().spilled, 0);
        let second = store.put(key("job-1", 1), buckets(5)).unwrap();
        assert_eq!(second.spilled, 83, "the second output no longer fits in 100 bytes");
        assert_eq!(second.bucket_bytes, [13, 0, 70]);
        for (p, seed) in [(0, 1), (1, 5)] {
            for b in 0..3u32 {
                assert_eq!(
                    store.bucket(&key("job-1", p), b).unwrap().unwrap(),
                    buckets(seed)[b as usize]
                );
            }
        }
        assert_eq!(store.bucket(&key("job-2", 0), 0).unwrap(), None);
        assert_eq!(store.release("job-1", 1), 2);
        assert_eq!(store.len(), 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "spill files are deleted");
        // Memory freed by the release is usable again.
        assert_eq!(store.put(key("job-3", 0), buckets(2)).unwrap().spilled, 0);
    }

    #[test]
    fn a_spilled_output_stored_again_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = ShuffleStore::new(dir.path().to_path_buf(), 0);
        store.put(key("job-1", 0), buckets(7)).unwrap();
        store.put(key("job-1", 0), buckets(7)).unwrap();
        for b in 0..3 {
            let got = store.bucket(&key("job-1", 0), b).unwrap().unwrap();
            assert_eq!(got, buckets(7)[b as usize], "bucket {b}");
        }
    }
}
