//! File sources: cutting input files into splits, and reading a split as line-aligned chunks.
//!
//! Files larger than the split size are cut into byte ranges, one task each, so that a single
//! large file keeps every slot busy:
//! - plain text with the usual rule for lines that straddle a cut: a line belongs to the split in
//!   which it *starts* (a split other than the first skips its partial first line; every split
//!   reads past its end to finish its last line). The cut is cheap (no I/O) but line numbers past
//!   the first split are unknown.
//! - CSV at exact record boundaries found by scanning the file first, since a
//!   quoted field may hold a newline (module `csv_layout`); each split knows its first line
//!   number, and every split but the first is sent the file's header record ahead of its own
//!   records.
//!
//! Gzip files cannot be cut and are read whole.
//!
//! Chunks are [`TextChunk`]s of about [`CHUNK_BYTES`], cut at line ends — for CSV at record ends,
//! so a quoted field containing a newline never straddles two chunks.

use crate::aligned_read::AlignedReader;
use crate::{InputFile, RangeRead, Storage, StorageError};
use bytes::Bytes;
use flate2::bufread::MultiGzDecoder;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use weft_abi::guest::TextChunk;
use weft_abi::task::{FileFormat, FileSplit};

/// Target size of one chunk handed to the guest.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Default largest split of a text or CSV input. Smaller than Spark's 128 MB blocks: a Weft task
/// is cheap to start (an instance from a warm pool slot), and a smaller task keeps its map-side
/// combine table nearer to cache size when keys are nearly all distinct, then frees it all at
/// once when its instance is discarded. On the web-log benchmark 16 MiB took a tenth off 32 MiB's
/// time with two workers, and the shorter tail keeps both workers busy to the end.
pub const DEFAULT_SPLIT_BYTES: u64 = 16 << 20;

/// The whole of file `f` as one split.
pub fn whole_split(f: &InputFile, format: FileFormat) -> FileSplit {
    FileSplit {
        path: f.path.clone(),
        start: 0,
        end: None,
        gzip: f.path.ends_with(".gz"),
        format,
        first_line: 1,
        header_len: 0,
    }
}

/// Smallest split worth a task of its own.
pub const MIN_SPLIT_BYTES: u64 = 1 << 20;

/// The split size for `total` input bytes on `slots` slots: at most `max_split`, and small enough
/// that every slot gets about four splits, so that slots stay busy to the end (as Spark sizes
/// its file partitions by bytes per core); never below [`MIN_SPLIT_BYTES`].
pub fn split_size(total: u64, slots: u32, max_split: u64) -> u64 {
    // Rounded up, so that the last split is not a sliver left over by the rounding.
    let per_slot = total.div_ceil(4 * slots.max(1) as u64);
    per_slot.clamp(MIN_SPLIT_BYTES, max_split.max(MIN_SPLIT_BYTES))
}

/// Cut `files` into splits of about `split_bytes`; CSV files are scanned for record boundaries
/// (the only I/O here).
pub fn plan_splits(
    storage: &dyn Storage,
    files: &[InputFile],
    format: FileFormat,
    split_bytes: u64,
) -> Result<Vec<FileSplit>, StorageError> {
    let mut splits = Vec::new();
    for f in files {
        let whole = whole_split(f, format);
        if whole.gzip || f.len <= split_bytes {
            splits.push(whole);
            continue;
        }
        match format {
            FileFormat::Text => {
                let mut start = 0;
                while start < f.len {
                    let end = (start + split_bytes).min(f.len);
                    let first_line = if start == 0 { 1 } else { 0 };
                    splits.push(FileSplit { start, end: Some(end), first_line, ..whole.clone() });
                    start = end;
                }
            }
            FileFormat::Csv => {
                let file = storage.open(&f.path)?;
                let layout = crate::csv_layout::scan(&*file, f.len, split_bytes)
                    .map_err(|e| StorageError::io(&f.path, format!("cannot scan: {e}")))?;
                let mut start = (0, 1);
                for &cut in layout.cuts.iter().chain(std::iter::once(&(f.len, 0))) {
                    let header_len = if start.0 == 0 { 0 } else { layout.header_len };
                    let end = if cut.0 >= f.len { None } else { Some(cut.0) };
                    splits.push(FileSplit {
                        start: start.0,
                        end,
                        first_line: start.1,
                        header_len,
                        ..whole.clone()
                    });
                    start = cut;
                }
            }
        }
    }
    Ok(splits)
}

/// Reads the splits of one task, one after the other, as [`TextChunk`] batches.
pub struct SplitReader {
    storage: Arc<dyn Storage>,
    splits: std::vec::IntoIter<FileSplit>,
    current: Option<OpenSplit>,
}

struct OpenSplit {
    split: FileSplit,
    reader: Box<dyn BufRead + Send>,
    /// File offset of the next unread byte (plain files only).
    pos: u64,
    /// Next line number, or 0 when unknown (a split that does not start the file).
    next_line: u64,
    /// The file's header record, still to be sent with the first chunk (CSV splits only).
    header: Vec<u8>,
    /// Bytes read past the end of the last chunk sent (the start of the next line or record).
    carry: Vec<u8>,
    /// The last byte read from the file ended a line (or nothing was read yet).
    at_line_start: bool,
    /// Nothing more to read (the carry may still hold a last piece).
    done: bool,
}

impl SplitReader {
    /// Read `splits` of `storage` in order.
    pub fn new(storage: Arc<dyn Storage>, splits: Vec<FileSplit>) -> Self {
        SplitReader { storage, splits: splits.into_iter(), current: None }
    }
}

impl SplitReader {
    /// The next chunk of the splits, or `None` after the last.
    pub fn next_batch(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            if self.current.is_none() {
                match self.splits.next() {
                    None => return Ok(None),
                    Some(split) => self.current = Some(OpenSplit::open(&*self.storage, split)?),
                }
            }
            let open = self.current.as_mut().expect("opened above");
            match open.next_chunk()? {
                Some(chunk) => return Ok(Some(chunk)),
                None => self.current = None,
            }
        }
    }
}

impl OpenSplit {
    fn open(storage: &dyn Storage, split: FileSplit) -> Result<OpenSplit, String> {
        let err = |e: std::io::Error| format!("{}: {e}", split.path);
        let file = storage.open(&split.path).map_err(|e| e.to_string())?;
        let mut pos = 0;
        let mut header = Vec::new();
        if split.header_len > 0 {
            header.resize(split.header_len as usize, 0);
            file.read_exact_at(&mut header, 0).map_err(err)?;
        }
        let reader: Box<dyn BufRead + Send> = if split.gzip {
            // File bytes are read into an aligned buffer (see `aligned_read`); the decoder's
            // output is buffered in user space.
            let compressed = AlignedReader::with_capacity(256 << 10, RangeReader { file, pos: 0 });
            Box::new(BufReader::with_capacity(256 << 10, MultiGzDecoder::new(compressed)))
        } else if split.start > 0 && split.format == FileFormat::Text {
            // Skip the line that started in the previous split.
            let at = RangeReader { file, pos: split.start - 1 };
            let mut reader = AlignedReader::with_capacity(256 << 10, at);
            let mut skipped = Vec::new();
            pos = split.start - 1 + reader.read_until(b'\n', &mut skipped).map_err(err)? as u64;
            Box::new(reader)
        } else {
            // CSV splits start exactly at a record.
            pos = split.start;
            Box::new(AlignedReader::with_capacity(256 << 10, RangeReader { file, pos }))
        };
        let next_line = split.first_line;
        Ok(OpenSplit {
            split,
            reader,
            pos,
            next_line,
            header,
            carry: Vec::new(),
            at_line_start: true,
            done: false,
        })
    }

    fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        if self.done && self.carry.is_empty() {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
        TextChunk::write_header(
            &mut buf,
            &self.split.path,
            self.next_line,
            &std::mem::take(&mut self.header),
        );
        let data = buf.len();
        buf.append(&mut self.carry);
        let mut target = CHUNK_BYTES;
        // Chunks end at a line end (text) or record end (CSV; each chunk starts at a record).
        // Bytes already searched are not searched again when a record outgrows a chunk.
        let (mut searched, mut in_quotes, mut last_end) = (data, false, None);
        let cut = loop {
            if let Err(e) = self.fill(&mut buf, data + target) {
                return Err(format!("{}: {e}", self.split.path));
            }
            if self.done {
                break buf.len();
            }
            let new = &buf[searched..];
            if self.split.format == FileFormat::Text {
                last_end = memchr::memrchr(b'\n', new).map(|i| searched + i + 1).or(last_end);
            } else {
                last_end = crate::csv_layout::last_record_end(new, &mut in_quotes)
                    .map(|end| searched + end)
                    .or(last_end);
            }
            searched = buf.len();
            match last_end {
                Some(end) => break end,
                None => target += CHUNK_BYTES, // one record longer than a chunk
            }
        };
        self.carry = buf.split_off(cut);
        if buf.len() == data {
            return Ok(None);
        }
        if self.next_line > 0 {
            self.next_line += memchr::memchr_iter(b'\n', &buf[data..]).count() as u64;
        }
        Ok(Some(Bytes::from(buf)))
    }

    /// Read into `buf` until it holds `len` bytes or the split ends (then `done` is set).
    fn fill(&mut self, buf: &mut Vec<u8>, len: usize) -> std::io::Result<()> {
        while !self.done && buf.len() < len {
            let mut want = (len - buf.len()) as u64;
            if let Some(end) = self.split.end {
                if self.pos >= end {
                    // A text split finishes the line that straddles its end.
                    if self.split.format == FileFormat::Text && !self.at_line_start {
                        self.pos += self.reader.read_until(b'\n', buf)? as u64;
                    }
                    self.done = true;
                    break;
                }
                want = want.min(end - self.pos);
            }
            let n = (&mut self.reader).take(want).read_to_end(buf)?;
            if n == 0 {
                self.done = true;
            } else {
                self.at_line_start = buf.last() == Some(&b'\n');
            }
            self.pos += n as u64;
        }
        Ok(())
    }
}

/// A [`RangeRead`] read sequentially from an offset.
struct RangeReader {
    file: Box<dyn RangeRead>,
    pos: u64,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataDir;
    use std::fs::File;
    use std::io::Write;

    /// The storage of a test: a data directory over `dir`.
    fn storage(dir: &tempfile::TempDir) -> Arc<dyn Storage> {
        Arc::new(DataDir::new(dir.path()).unwrap())
    }

    fn lines_of(store: &Arc<dyn Storage>, splits: Vec<FileSplit>) -> Vec<String> {
        let mut reader = SplitReader::new(store.clone(), splits);
        let mut out = Vec::new();
        while let Some(batch) = reader.next_batch().unwrap() {
            let chunk = TextChunk::decode(&batch).unwrap();
            out.extend(String::from_utf8(chunk.data.to_vec()).unwrap().lines().map(str::to_string));
        }
        out
    }

    #[test]
    fn every_line_is_read_once_whatever_the_split_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = storage(&dir);
        let path = dir.path().join("t.txt");
        let text: String = (0..500).map(|i| format!("line {i} {}\n", "x".repeat(i % 17))).collect();
        std::fs::write(&path, &text).unwrap();
        let file = InputFile { path: "t.txt".into(), len: text.len() as u64 };
        let expected: Vec<String> = text.lines().map(str::to_string).collect();
        for split in [1, 7, 64, 1000, 1 << 20] {
            let splits =
                plan_splits(&*store, std::slice::from_ref(&file), FileFormat::Text, split).unwrap();
            assert_eq!(lines_of(&store, splits), expected, "split size {split}");
        }
    }

    #[test]
    fn large_files_are_cut_into_chunks_at_line_ends_even_with_a_line_longer_than_a_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let store = storage(&dir);
        let path = dir.path().join("big.txt");
        let mut text: String = (0..300_000).map(|i| format!("line {i} {}\n", i % 97)).collect();
        text.push_str(&"y".repeat(CHUNK_BYTES * 5 / 2));
        text.push('\n');
        text.push_str("after the long line");
        std::fs::write(&path, &text).unwrap();
        let file = InputFile { path: "big.txt".into(), len: text.len() as u64 };
        let expected: Vec<String> = text.lines().map(str::to_string).collect();
        for split in [1 << 20, (3 << 20) + 7, u64::MAX] {
            let splits =
                plan_splits(&*store, std::slice::from_ref(&file), FileFormat::Text, split).unwrap();
            let mut reader = SplitReader::new(store.clone(), splits);
            let mut got = Vec::new();
            while let Some(batch) = reader.next_batch().unwrap() {
                let chunk = TextChunk::decode(&batch).unwrap();
                assert!(chunk.data.len() <= 3 * CHUNK_BYTES, "split size {split}");
                let data = String::from_utf8(chunk.data.to_vec()).unwrap();
                assert!(data.ends_with('\n') || data.ends_with("long line"), "split size {split}");
                got.extend(data.lines().map(str::to_string));
            }
            assert_eq!(got.len(), expected.len(), "split size {split}");
            assert!(got == expected, "split size {split}: lines differ");
        }
    }

    #[test]
    fn split_size_spreads_input_over_slots_within_bounds() {
        assert_eq!(split_size(200 << 20, 2, 32 << 20), 25 << 20);
        assert_eq!(split_size(20 << 20, 2, 32 << 20), 2621440);
        assert_eq!(split_size(10 << 30, 2, 32 << 20), 32 << 20);
        assert_eq!(split_size(1000, 8, 32 << 20), MIN_SPLIT_BYTES);
        assert_eq!(split_size(100 << 20, 2, 1), MIN_SPLIT_BYTES);
        // A total that does not divide evenly still makes 4 splits per slot, not 4 and a sliver.
        let total: u64 = 256_000_083;
        assert_eq!(total.div_ceil(split_size(total, 2, 32 << 20)), 8);
    }

    #[test]
    fn gzip_files_are_decompressed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = storage(&dir);
        let path = dir.path().join("t.txt.gz");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b"alpha\nbeta\ngamma").unwrap();
        gz.finish().unwrap();
        let file = InputFile { path: "t.txt.gz".into(), len: 3 };
        let splits = plan_splits(&*store, &[file], FileFormat::Text, 1).unwrap();
        assert_eq!(splits.len(), 1);
        assert_eq!(lines_of(&store, splits), ["alpha", "beta", "gamma"]);
    }

    #[test]
    fn csv_chunks_never_cut_a_quoted_newline() {
        let dir = tempfile::tempdir().unwrap();
        let store = storage(&dir);
        let path = dir.path().join("q.csv");
        let mut text = String::from("a,b\n");
        for i in 0..200_000 {
            text.push_str(&format!("{i},\"two\nlines\"\n"));
        }
        std::fs::write(&path, &text).unwrap();
        let file = InputFile { path: "q.csv".into(), len: text.len() as u64 };
        let mut reader = SplitReader::new(
            store.clone(),
            plan_splits(&*store, &[file], FileFormat::Csv, u64::MAX).unwrap(),
        );
        let mut chunks = 0;
        while let Some(batch) = reader.next_batch().unwrap() {
            let chunk = TextChunk::decode(&batch).unwrap();
            let quotes = chunk.data.iter().filter(|&&b| b == b'"').count();
            assert_eq!(quotes % 2, 0, "chunk {chunks} ends inside quotes");
            chunks += 1;
        }
        assert!(chunks > 1);
    }

    /// Every split's chunks: (first line, header sent, data).
    fn csv_pieces(
        store: &Arc<dyn Storage>,
        file: &InputFile,
        split: u64,
    ) -> Vec<Vec<(u64, String, String)>> {
        let splits =
            plan_splits(&**store, std::slice::from_ref(file), FileFormat::Csv, split).unwrap();
        splits
            .into_iter()
            .map(|split| {
                let mut reader = SplitReader::new(store.clone(), vec![split]);
                let mut chunks = Vec::new();
                while let Some(batch) = reader.next_batch().unwrap() {
                    let c = TextChunk::decode(&batch).unwrap();
                    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                    chunks.push((c.first_line, text(c.header), text(c.data)));
                }
                chunks
            })
            .collect()
    }

    #[test]
    fn csv_splits_start_at_records_with_the_header_and_their_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let store = storage(&dir);
        let path = dir.path().join("q.csv");
        let header = "id,note\n";
        let mut text = String::from(header);
        for i in 0..300 {
            if i % 3 == 0 {
                text.push_str(&format!("{i},\"two\nlines\"\n"));
            } else {
                text.push_str(&format!("{i},plain\n"));
            }
        }
        std::fs::write(&path, &text).unwrap();
        let file = InputFile { path: "q.csv".into(), len: text.len() as u64 };
        for split in [1, 10, 100, 1000, 1 << 20] {
            let splits = csv_pieces(&store, &file, split);
            let mut rebuilt = String::new();
            for (i, chunks) in splits.iter().enumerate() {
                let (first_line, sent_header, data) = &chunks[0];
                if i == 0 {
                    assert_eq!((*first_line, sent_header.as_str()), (1, ""), "split size {split}");
                } else {
                    assert_eq!(sent_header, header, "split {i} of size {split}");
                    // The split's line number is that of its first byte in the file.
                    let before = rebuilt.matches('\n').count() as u64 + 1;
                    assert_eq!(*first_line, before, "split {i} of size {split}");
                    assert!(
                        data.chars().next().unwrap().is_ascii_digit(),
                        "split {i} of size {split} starts inside a record: {data:?}"
                    );
                }
                for (_, _, data) in chunks {
                    rebuilt.push_str(data);
                }
            }
            assert_eq!(rebuilt, text, "split size {split}");
            if split <= 100 {
                assert!(splits.len() > 5, "split size {split}: {} splits", splits.len());
            }
        }
    }

    #[test]
    fn a_csv_file_that_vanished_before_planning_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = storage(&dir);
        let file = InputFile { path: "gone.csv".into(), len: 10 << 20 };
        let err = plan_splits(&*store, &[file], FileFormat::Csv, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("`gone.csv`"), "{err}");
    }
}
