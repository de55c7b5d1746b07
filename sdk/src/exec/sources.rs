//! Sources: iterators over the task's input batches, pulled from the host on demand.

use super::byte_scan::{count_byte, find_byte, is_ascii};
use super::{Erased, Iter, decode_arg, set_error};
use crate::abi::TextChunk;
use crate::{Error, Record, Result};

/// Records of type `T` from MessagePack batches (inline partitions, shuffle buckets): every
/// batch of every listed input, in order.
pub(crate) fn records<T: Record>(inputs: &[u32], _arg: &[u8], _op: u32) -> Result<Erased> {
    let inputs = inputs.to_vec();
    let it: Iter<T> = Box::new(inputs.into_iter().flat_map(batches::<T>));
    Ok(Erased::new(it))
}

/// The one input of a source that reads a single input.
pub(crate) fn single_input(inputs: &[u32]) -> Result<u32> {
    match inputs {
        [input] => Ok(*input),
        _ => Err(Error::Codec(format!("a source of one input was given {}", inputs.len()))),
    }
}

/// `range(start, end, partitions)`: this task's share of the numbers, generated here.
pub(crate) fn range(_inputs: &[u32], arg: &[u8], _op: u32) -> Result<Erased> {
    let (start, end, partitions): (u64, u64, u32) = decode_arg(arg, "range")?;
    let p = u64::from(super::task_partition());
    let n = u64::from(partitions.max(1));
    let len = end.saturating_sub(start);
    // Partition p gets [start + len·p/n, start + len·(p+1)/n): sizes differ by at most one.
    let at = |i: u64| start + ((u128::from(len) * u128::from(i)) / u128::from(n)) as u64;
    let it: Iter<u64> = Box::new(at(p)..at(p + 1));
    Ok(Erased::new(it))
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
pub(crate) fn text_lines(inputs: &[u32], _arg: &[u8], _op: u32) -> Result<Erased> {
    let input = single_input(inputs)?;
    let iter: Iter<String> =
        Box::new(TextLines { input, chunk: Vec::new(), pos: 0, ascii: false, done: false });
    Ok(Erased::new(iter))
}

struct TextLines {
    input: u32,
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
            match crate::host::input_next(self.input) {
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
