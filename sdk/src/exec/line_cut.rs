//! Cutting a plain (unquoted) CSV line into fields, 64 bytes at a time.
//!
//! Design choice: 64 bytes of the line at a time are compared with `\n` and with the delimiter
//! ([`masks64`], SIMD in wasm), and the line's end and its fields' starts are read off the bits
//! of the two masks; a typical CSV line takes one or two steps. The last bytes of the data are
//! cut 16 at a time ([`masks`]). A job usually reads a few of a file's columns, so only the
//! starts of the first `keep` fields are recorded; later delimiters are only counted (the row's
//! field count is still checked against the header).

use super::byte_scan::{BLOCK, block_at, masks, masks64};

/// Cut the line that starts at `start`: returns the index of its end (its `\n`, or the end of
/// `data`) and its number of fields. The starts of its first `keep` fields (at least the first)
/// are put in `starts`.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
pub(crate) fn cut_line(
    data: &[u8],
    start: usize,
    delimiter: u8,
    keep: usize,
    starts: &mut Vec<usize>,
) -> (usize, usize) {
    starts.clear();
    starts.push(start);
    let keep = keep.max(1);
    let mut fields = 1;
    let mut i = start;
    while let Some(window) = data.get(i..i + 4 * BLOCK) {
        let (newlines, delimiters) =
            masks64(window.try_into().expect("a whole window"), b'\n', delimiter);
        if let Some(end) = step(newlines, delimiters, i, keep, &mut fields, starts) {
            return (end, fields);
        }
        i += 4 * BLOCK;
    }
    loop {
        let (block, valid) = block_at(data, i);
        let (newlines, delimiters) = masks(&block, b'\n', delimiter);
        let (newlines, delimiters) = (u64::from(newlines & valid), u64::from(delimiters & valid));
        if let Some(end) = step(newlines, delimiters, i, keep, &mut fields, starts) {
            return (end, fields);
        }
        if valid != u32::MAX {
            return (data.len(), fields);
        }
        i += BLOCK;
    }
}

/// One step of [`cut_line`] over the masks of the bytes at `base`: records the delimiters up to
/// the first newline, and returns that newline's index if there is one.
#[inline(always)]
fn step(
    newlines: u64,
    delimiters: u64,
    base: usize,
    keep: usize,
    fields: &mut usize,
    starts: &mut Vec<usize>,
) -> Option<usize> {
    if newlines != 0 {
        let stop = newlines.trailing_zeros();
        record(delimiters & ((1u64 << stop) - 1), base, keep, fields, starts);
        return Some(base + stop as usize);
    }
    record(delimiters, base, keep, fields, starts);
    None
}

/// Count the delimiters in `mask` (block at `base`) and record field starts up to `keep`.
#[inline]
fn record(mut mask: u64, base: usize, keep: usize, fields: &mut usize, starts: &mut Vec<usize>) {
    *fields += mask.count_ones() as usize;
    while mask != 0 && starts.len() < keep {
        starts.push(base + mask.trailing_zeros() as usize + 1);
        mask &= mask - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `cut_line` must return, by a byte-by-byte scan.
    fn expected(text: &[u8], start: usize, keep: usize) -> (usize, usize, Vec<usize>) {
        let end = text[start..].iter().position(|&b| b == b'\n').map_or(text.len(), |p| start + p);
        let mut starts = vec![start];
        starts.extend((start..end).filter(|&i| text[i] == b',').map(|i| i + 1));
        let fields = starts.len();
        starts.truncate(keep.max(1));
        (end, fields, starts)
    }

    #[test]
    fn lines_are_cut_like_a_byte_by_byte_scan() {
        let text = b"a,bb,,ccc\n\n,\nno delimiter here at all, none at all\nx,y,z,1,2,3,4,5,6,\
                     7,8,9,10,11,12,13,14,15,16,17\n,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\nlast,";
        // And a line longer than two 64-byte steps, with fields across step boundaries.
        let long: Vec<u8> =
            (0..150u8).map(|i| if i % 7 == 3 { b',' } else { b'a' + i % 26 }).collect();
        let text = [&text[..], b"\n", &long, b"\nz"].concat();
        let text = &text[..];
        let mut starts = Vec::new();
        for keep in [0, 1, 2, 5, 100] {
            for start in 0..=text.len() {
                let (end, fields) = cut_line(text, start, b',', keep, &mut starts);
                let (want_end, want_fields, want_starts) = expected(text, start, keep);
                assert_eq!((end, fields), (want_end, want_fields), "line from {start}, {keep}");
                assert_eq!(starts, want_starts, "fields of the line from {start}, keep {keep}");
            }
        }
    }

    #[test]
    fn other_delimiters_and_blocks_ending_exactly_at_a_line_end() {
        // Lines of exactly 16 and 32 bytes put the `\n` right after a block.
        let text = b"0123456\t89abcdef\n0123456789abcde\t0123456789abcdef\n\t";
        let mut starts = Vec::new();
        assert_eq!(cut_line(text, 0, b'\t', 9, &mut starts), (16, 2));
        assert_eq!(starts, vec![0, 8]);
        assert_eq!(cut_line(text, 17, b'\t', 9, &mut starts), (49, 2));
        assert_eq!(starts, vec![17, 33]);
        assert_eq!(cut_line(text, 50, b'\t', 9, &mut starts), (51, 2));
        assert_eq!(starts, vec![50, 51]);
    }
}
