//! Where map outputs wait for their reducers until their action ends: in memory up to a bound,
//! then on the local disk of the machine that ran the map task.
//!
//! A map task writes its buckets through a [`MapOutputWriter`] while it runs, not all at once
//! when it ends, so that the bound holds for outputs still being written too: the writer
//! reserves memory from the store for every batch, and when the store has none left it moves
//! what it holds to a spill file and writes the rest of the task's output there. A spill file is
//! one per map output, batches appended in the order they were emitted, with an index in memory
//! of where each bucket's batches are — one open file per task however many buckets it writes.
//! Spill files are scratch data: a node that dies loses its outputs anyway (and they are
//! recomputed), so they are not synced.
//!
//! An output becomes visible to readers only when its writer finishes; a writer dropped before
//! (its task failed) leaves nothing, and so does one that finishes after its action was released
//! (a straggler of an action that already ended) or after the store was cleared. Every output is
//! stored with the job's [`ShuffleKey`], and a bucket is read only by whoever presents the same
//! key. Readers stream a bucket batch by batch ([`BucketReader`]); a missing output or a bucket it
//! does not have is an error, never an empty bucket.
//!
//! Every batch is charged [`BATCH_OVERHEAD`] bytes on top of its length, so that a task emitting
//! tiny batches cannot hold much more memory than the bound says; empty batches are not kept.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use thiserror::Error;
use weft_abi::task::{MapOutputId, ShuffleKey};

/// Why a map output could not be written or read.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ShuffleError {
    /// This store holds no output by that id (or holds it under another key, which is reported
    /// the same way so that a wrong key learns nothing).
    #[error("no map output {0} here")]
    Missing(String),
    /// The output has fewer buckets.
    #[error("map output {id} has {buckets} buckets; bucket {bucket} does not exist")]
    NoSuchBucket {
        /// The output.
        id: String,
        /// Its bucket count.
        buckets: u32,
        /// The bucket asked for.
        bucket: u32,
    },
    /// Reading or writing a spill file failed.
    #[error("shuffle spill file {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
}

fn describe(id: &MapOutputId) -> String {
    format!("{} action {} stage {} partition {}", id.job, id.action, id.stage, id.partition)
}

/// Bytes each batch is charged for beyond its length (what keeping it costs).
pub const BATCH_OVERHEAD: u64 = 64;

/// Released actions remembered, so that their stragglers' outputs are not kept.
const RELEASED_KEPT: usize = 10_000;

/// Where one bucket's batches are in a spill file: (offset, length) of each, in order.
type BucketIndex = Vec<(u64, u32)>;

enum Stored {
    Memory { buckets: Arc<Vec<Vec<Bytes>>>, bytes: u64 },
    Disk { file: Arc<File>, path: PathBuf, index: Arc<Vec<BucketIndex>> },
}

struct Entry {
    key: ShuffleKey,
    stored: Stored,
}

#[derive(Default)]
struct Inner {
    maps: HashMap<MapOutputId, Entry>,
    /// Bytes held in memory: stored outputs and writers' reservations.
    memory_bytes: u64,
    peak_memory_bytes: u64,
    spilled_bytes: u64,
    /// Actions already released (job, action), oldest first: outputs that finish later go.
    released: VecDeque<(String, u32)>,
    /// Bumped by `clear`: writers started before it keep nothing.
    generation: u64,
}

/// Map outputs held by a node (or by the embedded engine).
pub struct ShuffleStore {
    dir: Option<PathBuf>,
    memory_limit: u64,
    inner: Mutex<Inner>,
}

/// What a finished writer stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOutputReceipt {
    /// Bytes per bucket.
    pub bucket_bytes: Vec<u64>,
    /// Bytes written to disk (0 if all of it stayed in memory).
    pub spilled: u64,
}

/// The store's use of memory, for counters and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShuffleStats {
    /// Outputs held.
    pub outputs: u64,
    /// Bytes in memory now.
    pub memory_bytes: u64,
    /// The most bytes ever in memory at once.
    pub peak_memory_bytes: u64,
    /// Bytes ever written to spill files.
    pub spilled_bytes: u64,
}

/// Spill files of this process are told apart by this sequence.
static SPILL_SEQ: AtomicU64 = AtomicU64::new(0);

impl ShuffleStore {
    /// A store keeping up to `memory_limit` bytes in memory and spilling the rest under `dir`.
    pub fn new(dir: PathBuf, memory_limit: u64) -> ShuffleStore {
        ShuffleStore { dir: Some(dir), memory_limit, inner: Mutex::default() }
    }

    /// A store that keeps everything in memory.
    pub fn in_memory() -> ShuffleStore {
        ShuffleStore { dir: None, memory_limit: u64::MAX, inner: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start writing the output `id` of `buckets` buckets, stored under `key`.
    pub fn writer(
        self: &Arc<Self>,
        id: MapOutputId,
        key: ShuffleKey,
        buckets: u32,
    ) -> MapOutputWriter {
        MapOutputWriter {
            store: self.clone(),
            generation: self.lock().generation,
            id,
            key,
            memory: (0..buckets.max(1)).map(|_| Vec::new()).collect(),
            bucket_bytes: vec![0; buckets.max(1) as usize],
            reserved: 0,
            spill: None,
        }
    }

    /// Try to take `bytes` of the memory budget.
    fn reserve(&self, bytes: u64) -> bool {
        let mut inner = self.lock();
        if inner.memory_bytes.saturating_add(bytes) > self.memory_limit {
            return false;
        }
        inner.memory_bytes += bytes;
        inner.peak_memory_bytes = inner.peak_memory_bytes.max(inner.memory_bytes);
        true
    }

    fn unreserve(&self, bytes: u64) {
        let mut inner = self.lock();
        inner.memory_bytes = inner.memory_bytes.saturating_sub(bytes);
    }

    /// Read bucket `bucket` of output `id`, presenting `key`.
    pub fn reader(
        &self,
        id: &MapOutputId,
        key: &ShuffleKey,
        bucket: u32,
    ) -> Result<BucketReader, ShuffleError> {
        let inner = self.lock();
        let entry = inner
            .maps
            .get(id)
            .filter(|e| keys_match(&e.key, key))
            .ok_or_else(|| ShuffleError::Missing(describe(id)))?;
        let no_bucket = |buckets: usize| ShuffleError::NoSuchBucket {
            id: describe(id),
            buckets: buckets as u32,
            bucket,
        };
        Ok(match &entry.stored {
            Stored::Memory { buckets, .. } => {
                let batches =
                    buckets.get(bucket as usize).ok_or_else(|| no_bucket(buckets.len()))?;
                BucketReader::Memory(batches.iter().cloned().collect())
            }
            Stored::Disk { file, path, index } => {
                let pieces = index.get(bucket as usize).ok_or_else(|| no_bucket(index.len()))?;
                BucketReader::Disk {
                    file: file.clone(),
                    path: path.clone(),
                    pieces: pieces.iter().copied().collect(),
                }
            }
        })
    }

    /// Drop the map outputs of one action of one job, deleting their spill files (blocking);
    /// returns how many went. Outputs of that action that finish later are not kept.
    pub fn release(&self, job: &str, action: u32) -> usize {
        {
            let mut inner = self.lock();
            inner.released.push_back((job.to_string(), action));
            if inner.released.len() > RELEASED_KEPT {
                inner.released.pop_front();
            }
        }
        self.remove_where(|id| id.job == job && id.action == action)
    }

    /// Drop the map outputs of one stage of one action of one job (a cached dataset's blocks,
    /// when the job stops caching it); returns how many went.
    pub fn release_stage(&self, job: &str, action: u32, stage: u32) -> usize {
        self.remove_where(|id| id.job == job && id.action == action && id.stage == stage)
    }

    /// Drop every map output (a new coordinator session cannot name the old ones), and every one
    /// still being written.
    pub fn clear(&self) -> usize {
        {
            let mut inner = self.lock();
            inner.generation += 1;
            inner.released.clear();
        }
        self.remove_where(|_| true)
    }

    fn remove_where(&self, pick: impl Fn(&MapOutputId) -> bool) -> usize {
        let gone: Vec<Stored> = {
            let mut inner = self.lock();
            let ids: Vec<MapOutputId> = inner.maps.keys().filter(|id| pick(id)).cloned().collect();
            let mut gone = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(entry) = inner.maps.remove(&id) {
                    if let Stored::Memory { bytes, .. } = &entry.stored {
                        inner.memory_bytes = inner.memory_bytes.saturating_sub(*bytes);
                    }
                    gone.push(entry.stored);
                }
            }
            gone
        };
        let n = gone.len();
        // Files are deleted outside the lock.
        gone.into_iter().for_each(forget);
        n
    }

    /// Counts and memory use.
    pub fn stats(&self) -> ShuffleStats {
        let inner = self.lock();
        ShuffleStats {
            outputs: inner.maps.len() as u64,
            memory_bytes: inner.memory_bytes,
            peak_memory_bytes: inner.peak_memory_bytes,
            spilled_bytes: inner.spilled_bytes,
        }
    }

    /// Keep a finished output; an output already stored under the same id (an earlier attempt of
    /// the same map task) is replaced. An output of a released action, or begun before the store
    /// was cleared, is dropped instead.
    fn insert(&self, id: MapOutputId, entry: Entry, generation: u64) {
        let old = {
            let mut inner = self.lock();
            let released = inner.released.iter().any(|(j, a)| *j == id.job && *a == id.action);
            if released || generation != inner.generation {
                drop(inner);
                if let Stored::Memory { bytes, .. } = &entry.stored {
                    self.unreserve(*bytes);
                }
                forget(entry.stored);
                return;
            }
            inner.maps.insert(id, entry)
        };
        if let Some(old) = old {
            if let Stored::Memory { bytes, .. } = &old.stored {
                self.unreserve(*bytes);
            }
            forget(old.stored);
        }
    }
}

/// Compare keys without leaking where they differ through timing.
fn keys_match(a: &ShuffleKey, b: &ShuffleKey) -> bool {
    let (a, b) = (a.0.as_bytes(), b.0.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn forget(stored: Stored) {
    if let Stored::Disk { path, .. } = stored {
        let _ = std::fs::remove_file(path);
    }
}

/// A spill file being written.
struct Spill {
    writer: BufWriter<File>,
    path: PathBuf,
    offset: u64,
    index: Vec<BucketIndex>,
}

/// One map task's output while the task runs. Dropped without [`finish`](Self::finish), it
/// leaves nothing behind.
pub struct MapOutputWriter {
    store: Arc<ShuffleStore>,
    generation: u64,
    id: MapOutputId,
    key: ShuffleKey,
    memory: Vec<Vec<Bytes>>,
    bucket_bytes: Vec<u64>,
    /// Bytes of `memory`, reserved from the store.
    reserved: u64,
    spill: Option<Spill>,
}

impl MapOutputWriter {
    /// Number of buckets.
    pub fn buckets(&self) -> u32 {
        self.bucket_bytes.len() as u32
    }

    /// Add a batch to bucket `bucket`.
    pub fn emit(&mut self, bucket: u32, batch: &[u8]) -> Result<(), ShuffleError> {
        let b = bucket as usize;
        if b >= self.bucket_bytes.len() {
            return Err(ShuffleError::NoSuchBucket {
                id: describe(&self.id),
                buckets: self.buckets(),
                bucket,
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.bucket_bytes[b] += batch.len() as u64;
        let cost = batch.len() as u64 + BATCH_OVERHEAD;
        if self.spill.is_none() && self.store.reserve(cost) {
            self.reserved += cost;
            self.memory[b].push(Bytes::copy_from_slice(batch));
            return Ok(());
        }
        if self.spill.is_none() {
            self.start_spill()?;
        }
        self.append(b, batch)
    }

    /// Move what is in memory to a new spill file, which takes the rest of the output.
    fn start_spill(&mut self) -> Result<(), ShuffleError> {
        let dir = self.store.dir.clone().ok_or_else(|| ShuffleError::Io {
            path: "(none)".into(),
            reason: "the shuffle store has no spill directory".into(),
        })?;
        let io = |path: &PathBuf, e: std::io::Error| ShuffleError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let seq = SPILL_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("map-{}-{seq}.spill", std::process::id()));
        // Read back by readers through the same file handle, so open it for both.
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let buckets = self.memory.len();
        self.spill = Some(Spill {
            writer: BufWriter::with_capacity(1 << 20, file),
            path,
            offset: 0,
            index: vec![Vec::new(); buckets],
        });
        let held = std::mem::take(&mut self.memory);
        for (b, batches) in held.iter().enumerate() {
            for batch in batches {
                self.append(b, batch)?;
            }
        }
        self.memory = vec![Vec::new(); buckets];
        self.store.unreserve(std::mem::take(&mut self.reserved));
        Ok(())
    }

    fn append(&mut self, b: usize, batch: &[u8]) -> Result<(), ShuffleError> {
        let spill = self.spill.as_mut().expect("spilling");
        spill.writer.write_all(batch).map_err(|e| ShuffleError::Io {
            path: spill.path.display().to_string(),
            reason: e.to_string(),
        })?;
        spill.index[b].push((spill.offset, batch.len() as u32));
        spill.offset += batch.len() as u64;
        Ok(())
    }

    /// The task succeeded: keep the output where readers find it.
    pub fn finish(mut self) -> Result<MapOutputReceipt, ShuffleError> {
        let id = self.id.clone();
        let key = self.key.clone();
        let bucket_bytes = std::mem::take(&mut self.bucket_bytes);
        let (stored, spilled) = match self.spill.take() {
            None => {
                let bytes = std::mem::take(&mut self.reserved);
                let buckets = Arc::new(std::mem::take(&mut self.memory));
                (Stored::Memory { buckets, bytes }, 0)
            }
            Some(spill) => {
                let Spill { writer, path, offset, index } = spill;
                self.store.lock().spilled_bytes += offset;
                let error =
                    |reason: String| ShuffleError::Io { path: path.display().to_string(), reason };
                let file = match writer.into_inner() {
                    Ok(file) => file,
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        return Err(error(e.error().to_string()));
                    }
                };
                (Stored::Disk { file: Arc::new(file), path, index: Arc::new(index) }, offset)
            }
        };
        self.store.insert(id, Entry { key, stored }, self.generation);
        Ok(MapOutputReceipt { bucket_bytes, spilled })
    }
}

impl Drop for MapOutputWriter {
    fn drop(&mut self) {
        self.store.unreserve(self.reserved);
        if let Some(spill) = self.spill.take() {
            self.store.lock().spilled_bytes += spill.offset;
            drop(spill.writer);
            let _ = std::fs::remove_file(spill.path);
        }
    }
}

/// One bucket of one map output, read batch by batch.
pub enum BucketReader {
    /// Batches in memory.
    Memory(VecDeque<Bytes>),
    /// Batches in a spill file, read one at a time.
    Disk {
        /// The spill file (kept open: it may be replaced or released while being read).
        file: Arc<File>,
        /// Its path, for messages.
        path: PathBuf,
        /// Where the bucket's batches are.
        pieces: VecDeque<(u64, u32)>,
    },
}

impl BucketReader {
    /// The next batch, or `None` after the last (blocking: it may read a file).
    pub fn next_batch(&mut self) -> Result<Option<Bytes>, ShuffleError> {
        match self {
            BucketReader::Memory(batches) => Ok(batches.pop_front()),
            BucketReader::Disk { file, path, pieces } => {
                let Some((offset, len)) = pieces.pop_front() else { return Ok(None) };
                let mut buf = vec![0u8; len as usize];
                file.read_exact_at(&mut buf, offset).map_err(|e| ShuffleError::Io {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Ok(Some(Bytes::from(buf)))
            }
        }
    }

    /// Whether it reads from disk (so should not be driven from an async thread).
    pub fn is_on_disk(&self) -> bool {
        matches!(self, BucketReader::Disk { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(job: &str, partition: u32) -> MapOutputId {
        MapOutputId { job: job.into(), action: 1, stage: 0, partition }
    }

    fn key() -> ShuffleKey {
        ShuffleKey("k".repeat(64))
    }

    fn batches(seed: u8) -> Vec<Vec<Vec<u8>>> {
        vec![vec![vec![seed; 10], vec![seed + 1; 3]], vec![], vec![vec![seed; 70]]]
    }

    fn write(store: &Arc<ShuffleStore>, id: MapOutputId, seed: u8) -> MapOutputReceipt {
        let mut w = store.writer(id, key(), 3);
        for (b, bucket) in batches(seed).iter().enumerate() {
            for batch in bucket {
                w.emit(b as u32, batch).unwrap();
            }
        }
        w.finish().unwrap()
    }

    fn read(store: &ShuffleStore, id: &MapOutputId, bucket: u32) -> Vec<Vec<u8>> {
        let mut r = store.reader(id, &key(), bucket).unwrap();
        let mut out = Vec::new();
        while let Some(b) = r.next_batch().unwrap() {
            out.push(b.to_vec());
        }
        out
    }

    #[test]
    fn outputs_past_the_memory_bound_spill_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        // Each output is 83 bytes in 3 batches: 83 + 3 * 64 = 275 bytes charged.
        let store = Arc::new(ShuffleStore::new(dir.path().to_path_buf(), 300));
        assert_eq!(write(&store, id("job-1", 0), 1).spilled, 0);
        let second = write(&store, id("job-1", 1), 5);
        assert_eq!(second.spilled, 83, "the second output no longer fits in 300 bytes");
        assert_eq!(second.bucket_bytes, [13, 0, 70]);
        for (p, seed) in [(0, 1), (1, 5)] {
            for b in 0..3u32 {
                assert_eq!(read(&store, &id("job-1", p), b), batches(seed)[b as usize]);
            }
        }
        assert_eq!(store.release("job-1", 1), 2);
        assert_eq!(store.stats().outputs, 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "spill files are deleted");
        // Memory freed by the release is usable again.
        assert_eq!(write(&store, id("job-3", 0), 2).spilled, 0);
    }

    #[test]
    fn a_task_s_output_spills_while_it_is_written_not_after() {
        // Regression: a task's whole output used to be held in memory until the task ended,
        // whatever the bound. Here one task writes 50 batches of 1000 bytes against a 4000 byte
        // bound: the store never holds more than the bound, and everything reads back.
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ShuffleStore::new(dir.path().to_path_buf(), 4000));
        let mut w = store.writer(id("job-1", 0), key(), 2);
        for i in 0..50u8 {
            w.emit(u32::from(i % 2), &[i; 1000]).unwrap();
            // Empty batches are not kept, and do not count.
            w.emit(0, &[]).unwrap();
            assert!(store.stats().memory_bytes <= 4000, "batch {i}: {:?}", store.stats());
        }
        let receipt = w.finish().unwrap();
        assert_eq!(receipt.bucket_bytes, [25_000, 25_000]);
        assert!(store.stats().peak_memory_bytes <= 4000, "{:?}", store.stats());
        assert_eq!(store.stats().memory_bytes, 0, "a spilled output holds no memory");
        let odd: Vec<Vec<u8>> = (0..50u8).filter(|i| i % 2 == 1).map(|i| vec![i; 1000]).collect();
        assert_eq!(read(&store, &id("job-1", 0), 1), odd);
    }

    #[test]
    fn outputs_that_finish_after_their_action_was_released_or_the_store_cleared_are_not_kept() {
        // Regression: a straggler map task of an action that had already ended stored its
        // output for good.
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ShuffleStore::new(dir.path().to_path_buf(), 1 << 20));
        let mut straggler = store.writer(id("job-1", 3), key(), 1);
        straggler.emit(0, b"late").unwrap();
        store.release("job-1", 1);
        straggler.finish().unwrap();
        let mut old_session = store.writer(id("job-2", 0), key(), 1);
        old_session.emit(0, b"old").unwrap();
        store.clear();
        old_session.finish().unwrap();
        let stats = store.stats();
        assert_eq!((stats.outputs, stats.memory_bytes), (0, 0), "{stats:?}");
        assert!(store.reader(&id("job-1", 3), &key(), 0).is_err());
        // Other actions are kept as ever.
        write(&store, id("job-3", 0), 1);
        assert_eq!(store.stats().outputs, 1);
    }

    #[test]
    fn missing_outputs_buckets_and_wrong_keys_are_errors_not_empty_buckets() {
        let store = Arc::new(ShuffleStore::in_memory());
        write(&store, id("job-1", 0), 1);
        assert!(matches!(
            store.reader(&id("job-1", 0), &key(), 3),
            Err(ShuffleError::NoSuchBucket { buckets: 3, bucket: 3, .. })
        ));
        assert!(matches!(store.reader(&id("job-1", 9), &key(), 0), Err(ShuffleError::Missing(_))));
        let wrong = ShuffleKey("x".repeat(64));
        assert!(matches!(store.reader(&id("job-1", 0), &wrong, 0), Err(ShuffleError::Missing(_))));
        let mut w = store.writer(id("job-1", 1), key(), 2);
        assert!(matches!(w.emit(2, b"x"), Err(ShuffleError::NoSuchBucket { .. })));
    }

    #[test]
    fn an_output_stored_again_replaces_the_old_one_and_a_failed_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ShuffleStore::new(dir.path().to_path_buf(), 0));
        write(&store, id("job-1", 0), 7);
        write(&store, id("job-1", 0), 8);
        for b in 0..3 {
            assert_eq!(read(&store, &id("job-1", 0), b), batches(8)[b as usize], "bucket {b}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the old file is gone");
        let mut failed = store.writer(id("job-1", 1), key(), 3);
        failed.emit(0, b"half").unwrap();
        drop(failed);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(store.reader(&id("job-1", 1), &key(), 0).is_err());
        assert_eq!(store.stats().outputs, 1);
    }

    #[test]
    fn a_spilled_bucket_is_read_batch_by_batch_not_whole() {
        // Regression: the shuffle service read a spilled bucket whole into memory before
        // sending any of it. A reader must take one batch at a time from the file: cut the file
        // after the first batch was read and the rest is no longer there to be read.
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ShuffleStore::new(dir.path().to_path_buf(), 0));
        let mut w = store.writer(id("job-1", 0), key(), 1);
        for i in 0..100u8 {
            w.emit(0, &[i; 1000]).unwrap();
        }
        w.finish().unwrap();
        let mut reader = store.reader(&id("job-1", 0), &key(), 0).unwrap();
        assert!(reader.is_on_disk());
        assert_eq!(reader.next_batch().unwrap().unwrap().to_vec(), vec![0u8; 1000]);
        let spill = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
        std::fs::OpenOptions::new().write(true).open(&spill).unwrap().set_len(1000).unwrap();
        assert!(reader.next_batch().is_err(), "the rest was read before it was asked for");
    }
}
