//! File reads that land on 64-byte-aligned memory.
//!
//! Design choice: every read of input data goes through a buffer of our own whose start is
//! 64-byte aligned, and is copied out of it in user space. The kernel copies file data into
//! whatever buffer `read` is given, and on some x86 machines that copy is several times slower
//! when the destination is not 32-byte aligned: on this project's benchmark machine (AMD EPYC
//! under Firecracker, Linux 6.18), reading 256 MB from the page cache took ~135 ms into a buffer
//! 16 bytes past a page boundary, which is where `malloc` puts large blocks, and ~33 ms into an
//! aligned one. `std::io::BufReader`'s buffer has no such alignment, and it hands large reads
//! straight to the caller's buffer, which is at any offset. The copy out of our buffer runs at
//! cache speed whatever the alignment, so the cost of the extra copy is small.

use std::io::{BufRead, Read};

/// Alignment of the start of an [`AlignedBuf`].
const ALIGN: usize = 64;

/// A zeroed byte buffer whose first byte is [`ALIGN`]-byte aligned.
pub(crate) struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    pub(crate) fn new(len: usize) -> AlignedBuf {
        let storage = vec![0u8; len + ALIGN];
        let start = (ALIGN - storage.as_ptr() as usize % ALIGN) % ALIGN;
        AlignedBuf { storage, start, len }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }

    fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
}

/// A buffered reader (like `BufReader`) that always reads into its own aligned buffer.
pub(crate) struct AlignedReader<R> {
    inner: R,
    buf: AlignedBuf,
    /// The unread bytes are `buf[pos..filled]`.
    pos: usize,
    filled: usize,
}

impl<R: Read> AlignedReader<R> {
    pub(crate) fn with_capacity(capacity: usize, inner: R) -> AlignedReader<R> {
        AlignedReader { inner, buf: AlignedBuf::new(capacity.max(1)), pos: 0, filled: 0 }
    }
}

impl<R: Read> Read for AlignedReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for AlignedReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.filled {
            self.filled = self.inner.read(self.buf.as_mut_slice())?;
            self.pos = 0;
        }
        Ok(&self.buf.as_slice()[self.pos..self.filled])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.filled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_aligned() {
        for len in [1, 63, 64, 4096, 1 << 20] {
            let mut buf = AlignedBuf::new(len);
            let slice = buf.as_mut_slice();
            assert_eq!(slice.len(), len);
            assert!((slice.as_ptr() as usize).is_multiple_of(ALIGN), "length {len}");
        }
    }

    #[test]
    fn reads_lines_and_bytes_like_a_buf_reader() {
        let text: Vec<u8> =
            (0..10_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        // A capacity smaller than a line, and one that splits lines across refills.
        for capacity in [3, 100, 4096] {
            let mut reader = AlignedReader::with_capacity(capacity, &text[..]);
            let mut first = Vec::new();
            reader.read_until(b'\n', &mut first).unwrap();
            assert_eq!(first, b"line 0\n");
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).unwrap();
            assert_eq!([first, rest].concat(), text, "capacity {capacity}");
        }
    }
}
