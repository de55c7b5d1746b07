//! File sources: cutting input files into splits, and reading a split as line-aligned chunks.
//!
//! Plain text files larger than the split size are cut into byte ranges, one task each, with the
//! usual rule for lines that straddle a cut: a line belongs to the split in which it *starts*
//! (a split other than the first skips its partial first line; every split reads past its end to
//! finish its last line). Gzip files cannot be cut and are read whole; CSV files are read whole so
//! that each starts with its header and line numbers are exact.
//!
//! Chunks are [`TextChunk`]s of about [`CHUNK_BYTES`], cut at line ends — for CSV at record ends,
//! so a quoted field containing a newline never straddles two chunks.

use crate::data_dir::InputFile;
use crate::task::BatchSource;
use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use weft::abi::TextChunk;

/// Target size of one chunk handed to the guest.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Default size of a split of a large plain-text file.
pub const DEFAULT_SPLIT_BYTES: u64 = 32 << 20;

/// How a file's lines are grouped into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FileFormat {
    /// Lines of text.
    Text,
    /// CSV records (a quoted field may span lines).
    Csv,
}

/// A piece of one input file read by one task.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FileSplit {
    /// Canonical path.
    pub path: PathBuf,
    /// Path relative to the data directory, for messages.
    pub display: String,
    /// First byte (plain files only).
    pub start: u64,
    /// End of the range, exclusive; `None` to the end of the file.
    pub end: Option<u64>,
    /// Decompress with gzip.
    pub gzip: bool,
    /// Text or CSV.
    pub format: FileFormat,
}

/// Smallest split worth a task of its own.
pub const MIN_SPLIT_BYTES: u64 = 1 << 20;

/// The split size for `total` input bytes on `slots` slots: at most `max_split`, and small enough
/// that every slot gets about four splits, so that slots stay busy to the end (as Spark sizes
/// its file partitions by bytes per core); never below [`MIN_SPLIT_BYTES`].
pub fn split_size(total: u64, slots: u32, max_split: u64) -> u64 {
    let per_slot = total / (4 * slots.max(1) as u64);
    per_slot.clamp(MIN_SPLIT_BYTES, max_split.max(MIN_SPLIT_BYTES))
}

/// Cut `files` into splits of at most `split_bytes` (plain text only).
pub fn plan_splits(files: &[InputFile], format: FileFormat, split_bytes: u64) -> Vec<FileSplit> {
    let mut splits = Vec::new();
    for f in files {
        let gzip = f.path.extension().is_some_and(|e| e == "gz");
        let whole = FileSplit {
            path: f.path.clone(),
            display: f.display.clone(),
            start: 0,
            end: None,
            gzip,
            format,
        };
        if gzip || format == FileFormat::Csv || f.len <= split_bytes {
            splits.push(whole);
            continue;
        }
        let mut start = 0;
        while start < f.len {
            let end = (start + split_bytes).min(f.len);
            splits.push(FileSplit { start, end: Some(end), ..whole.clone() });
            start = end;
        }
    }
    splits
}

/// Reads the splits of one task, one after the other, as [`TextChunk`] batches.
pub struct SplitReader {
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
    done: bool,
}

impl SplitReader {
    /// Read `splits` in order.
    pub fn new(splits: Vec<FileSplit>) -> Self {
        SplitReader { splits: splits.into_iter(), current: None }
    }
}

impl BatchSource for SplitReader {
    fn next_batch(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            if self.current.is_none() {
                match self.splits.next() {
                    None => return Ok(None),
                    Some(split) => self.current = Some(OpenSplit::open(split)?),
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
    fn open(split: FileSplit) -> Result<OpenSplit, String> {
        let err = |e: std::io::Error| format!("{}: {e}", split.display);
        let mut file = File::open(&split.path).map_err(err)?;
        let mut pos = 0;
        let mut next_line = 1;
        let reader: Box<dyn BufRead + Send> = if split.gzip {
            Box::new(BufReader::with_capacity(256 << 10, MultiGzDecoder::new(BufReader::new(file))))
        } else {
            let mut reader;
            if split.start > 0 {
                // Skip the line that started in the previous split.
                file.seek(SeekFrom::Start(split.start - 1)).map_err(err)?;
                reader = BufReader::with_capacity(256 << 10, file);
                let mut skipped = Vec::new();
                pos = split.start - 1 + reader.read_until(b'\n', &mut skipped).map_err(err)? as u64;
                next_line = 0;
            } else {
                reader = BufReader::with_capacity(256 << 10, file);
            }
            Box::new(reader)
        };
        Ok(OpenSplit { split, reader, pos, next_line, done: false })
    }

    fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        if self.done {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(CHUNK_BYTES + 4096);
        TextChunk::write_header(&mut buf, &self.split.display, self.next_line);
        let header = buf.len();
        let mut lines = 0u64;
        let mut in_quotes = false;
        loop {
            if let Some(end) = self.split.end
                && self.pos >= end
            {
                self.done = true;
                break;
            }
            let before = buf.len();
            let n = self
                .reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| format!("{}: {e}", self.split.display))?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.pos += n as u64;
            lines += 1;
            if self.split.format == FileFormat::Csv {
                let quotes = buf[before..].iter().filter(|&&b| b == b'"').count();
                in_quotes ^= quotes % 2 == 1;
            }
            if buf.len() - header >= CHUNK_BYTES && !in_quotes {
                break;
            }
        }
        if self.next_line > 0 {
            self.next_line += lines;
        }
        if buf.len() == header {
            return Ok(None);
        }
        Ok(Some(Bytes::from(buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_of(splits: Vec<FileSplit>) -> Vec<String> {
        let mut reader = SplitReader::new(splits);
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
        let path = dir.path().join("t.txt");
        let text: String = (0..500).map(|i| format!("line {i} {}\n", "x".repeat(i % 17))).collect();
        std::fs::write(&path, &text).unwrap();
        let file =
            InputFile { path: path.clone(), display: "t.txt".into(), len: text.len() as u64 };
        let expected: Vec<String> = text.lines().map(str::to_string).collect();
        for split in [1, 7, 64, 1000, 1 << 20] {
            let splits = plan_splits(std::slice::from_ref(&file), FileFormat::Text, split);
            assert_eq!(lines_of(splits), expected, "split size {split}");
        }
    }

    #[test]
    fn split_size_spreads_input_over_slots_within_bounds() {
        assert_eq!(split_size(200 << 20, 2, 32 << 20), 25 << 20);
        assert_eq!(split_size(20 << 20, 2, 32 << 20), 2621440);
        assert_eq!(split_size(10 << 30, 2, 32 << 20), 32 << 20);
        assert_eq!(split_size(1000, 8, 32 << 20), MIN_SPLIT_BYTES);
        assert_eq!(split_size(100 << 20, 2, 1), MIN_SPLIT_BYTES);
    }

    #[test]
    fn gzip_files_are_decompressed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt.gz");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b"alpha\nbeta\ngamma").unwrap();
        gz.finish().unwrap();
        let file = InputFile { path, display: "t.txt.gz".into(), len: 3 };
        let splits = plan_splits(&[file], FileFormat::Text, 1);
        assert_eq!(splits.len(), 1);
        assert_eq!(lines_of(splits), ["alpha", "beta", "gamma"]);
    }

    #[test]
    fn csv_chunks_never_cut_a_quoted_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.csv");
        let mut text = String::from("a,b\n");
        for i in 0..200_000 {
            text.push_str(&format!("{i},\"two\nlines\"\n"));
        }
        std::fs::write(&path, &text).unwrap();
        let file = InputFile { path, display: "q.csv".into(), len: text.len() as u64 };
        let mut reader = SplitReader::new(plan_splits(&[file], FileFormat::Csv, 1));
        let mut chunks = 0;
        while let Some(batch) = reader.next_batch().unwrap() {
            let chunk = TextChunk::decode(&batch).unwrap();
            let quotes = chunk.data.iter().filter(|&&b| b == b'"').count();
            assert_eq!(quotes % 2, 0, "chunk {chunks} ends inside quotes");
            chunks += 1;
        }
        assert!(chunks > 1);
    }
}
