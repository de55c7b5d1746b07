//! Sources: iterators over the task's input batches, pulled from the host on demand.

use super::byte_scan::{count_byte, find_byte, is_ascii};
use super::{Erased, Iter, set_error};
use crate::abi::TextChunk;
use crate::{Error, Record, Result};

/// Records of type `T` from MessagePack batches (inline partitions).
pub(crate) fn records<T: Record>(_arg: &[u8], _op: u32) -> Result<Erased> {
    Ok(Erased::new::<T>(Box::new(batches::<T>(0))))
}

/// Every record of every remaining batch of the task's input number `input`, each batch a
/// MessagePack `Vec<T>`.
pub(crate) fn batches<T: Record>(input: u32) -> impl Iterator<Item = T> {
    std::iter::from_fn(move || crate::host::input_next(input)).flat_map(|batch| {
        match rmp_serde::from_slice::<Vec<T>>(&batch) {
            Ok(records) => records,
            Err(e) => {
                set_error(Error::Codec(format!(
                    "cannot decode an input batch as {}: {e}",
                    std::any::type_name::<T>()
                )));
                Vec::new()
            }
        }
    })
}

/// Lines of text (without line endings) from line-aligned [`TextChunk`]s.
pub(crate) fn text_lines(_arg: &[u8], _op: u32) -> Result<Erased> {
    let iter: Iter<String> =
        Box::new(TextLines { chunk: Vec::new(), pos: 0, ascii: false, done: false });
    Ok(Erased::new(iter))
}

struct TextLines {
    chunk: Vec<u8>,
    pos: usize,
    /// The chunk's text is all ASCII, so each line is valid UTF-8 without a check of its own.
    ascii: bool,
    done: bool,
}

impl TextLines {
    fn file_and_line(&self, at: usize) -> String {
        match TextChunk::decode(&self.chunk) {
            Some(c) if c.first_line > 0 => {
                let offset = at - c.data_offset(&self.chunk);
                let line = c.first_line + count_byte(b'\n', &c.data[..offset]) as u64;
                format!("{} line {line}", c.file)
            }
            Some(c) => format!("{} (in a split of the file)", c.file),
            None => "an input chunk".to_string(),
        }
    }
}

impl Iterator for TextLines {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            if self.done {
                return None;
            }
            if self.pos < self.chunk.len() {
                let rest = &self.chunk[self.pos..];
                let (line, advance) = match find_byte(b'\n', rest) {
                    Some(i) => (&rest[..i], i + 1),
                    None => (rest, rest.len()),
                };
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let start = self.pos;
                self.pos += advance;
                if self.ascii {
                    // SAFETY: ASCII bytes are valid UTF-8.
                    return Some(unsafe { std::str::from_utf8_unchecked(line) }.to_owned());
                }
                match std::str::from_utf8(line) {
                    Ok(s) => return Some(s.to_owned()),
                    Err(e) => {
                        let at = self.file_and_line(start);
                        set_error(Error::Input(format!("{at}: invalid UTF-8 text ({e})")));
                        self.done = true;
                        return None;
                    }
                }
            }
            match crate::host::input_next(0) {
                None => {
                    self.done = true;
                    return None;
                }
                Some(batch) => match TextChunk::decode(&batch) {
                    Some(c) => {
                        self.pos = c.data_offset(&batch);
                        self.ascii = is_ascii(c.data);
                        self.chunk = batch;
                    }
                    None => {
                        set_error(Error::Codec("malformed text chunk from the host".into()));
                        self.done = true;
                    }
                },
            }
        }
    }
}
