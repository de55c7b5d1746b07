//! The CSV source: rows of line-aligned CSV chunks decoded into the user's record type by header
//! name, with file, line and column in every error.
//!
//! Design choice: two ways through a chunk, same answers. A chunk without any `"` or `\r` (most
//! machine-written CSV) cannot hold quoting or odd line endings, so its records are exactly its
//! non-empty lines and its fields exactly the pieces between delimiters: those are cut with a
//! plain byte scan, several times faster in wasm than the general CSV state machine. Any other
//! chunk goes through the `csv` crate. Either way a row is then cut down to the columns the record
//! type names and decoded by [`RowDecoder`].

use super::byte_scan::{contains_either, is_ascii};
use super::csv_columns::RowDecoder;
use super::line_cut::cut_line;
use super::{Erased, Iter, decode_arg, set_error};
use crate::abi::{CsvOptions, TextChunk};
use crate::{Error, Record, Result};
use std::io::Cursor;

/// Rows of type `T`; the argument is the encoded [`CsvOptions`].
pub(crate) fn csv_rows<T: Record>(inputs: &[u32], arg: &[u8], _op: u32) -> Result<Erased> {
    let input = super::sources::single_input(inputs)?;
    let options: CsvOptions = decode_arg(arg, "csv source")?;
    let rows = CsvRows::<T>::new(options, Box::new(move || crate::host::input_next(input)));
    let iter: Iter<T> = Box::new(rows.with_skip_report(crate::host::bad_rows));
    Ok(Erased::new(iter))
}

/// Where the rows of the current chunk come from.
enum Chunk {
    /// No chunk loaded.
    None,
    /// A chunk without quotes or carriage returns, cut by hand from `pos`; `line` is the line
    /// number at `pos` (0 when unknown); `ascii` when all of it is ASCII (so valid UTF-8).
    Plain { data: Vec<u8>, pos: usize, line: u64, ascii: bool },
    /// Any other chunk, through the CSV parser; `first_line` is the line number where the
    /// parser starts (0 when unknown).
    Parsed { reader: csv::Reader<Cursor<Vec<u8>>>, first_line: u64 },
}

pub(crate) struct CsvRows<T> {
    options: CsvOptions,
    input: Box<dyn FnMut() -> Option<Vec<u8>>>,
    report_skipped: fn(u64, &str),
    chunk: Chunk,
    file: String,
    /// The current file's header, once read, as a decoder of its rows.
    decoder: Option<RowDecoder>,
    /// Field starts of the current plain line (those the decoder reads).
    starts: Vec<usize>,
    record: csv::ByteRecord,
    skipped: u64,
    first_skip: Option<String>,
    done: bool,
    _t: std::marker::PhantomData<T>,
}

impl<T: Record> CsvRows<T> {
    /// Rows from the chunks `input` returns.
    pub(crate) fn new(options: CsvOptions, input: Box<dyn FnMut() -> Option<Vec<u8>>>) -> Self {
        CsvRows {
            options,
            input,
            report_skipped: |_, _| {},
            chunk: Chunk::None,
            file: String::new(),
            decoder: None,
            starts: Vec::new(),
            record: csv::ByteRecord::new(),
            skipped: 0,
            first_skip: None,
            done: false,
            _t: std::marker::PhantomData,
        }
    }

    /// Call `report` with the count and first error of skipped rows at the end.
    pub(crate) fn with_skip_report(mut self, report: fn(u64, &str)) -> Self {
        self.report_skipped = report;
        self
    }

    fn parser<R: std::io::Read>(&self, bytes: R) -> csv::Reader<R> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.options.delimiter)
            .from_reader(bytes)
    }

    fn at(&self, line: u64) -> String {
        at(&self.file, line)
    }

    fn fail(&mut self, error: Error) {
        set_error(error);
        self.done = true;
    }

    /// Take the file's header from `bytes` (the chunk's own header field, or the start of its
    /// data); returns the bytes consumed and the lines they span.
    fn read_header(&mut self, bytes: &[u8], line: u64) -> Option<(usize, u64)> {
        let mut reader = self.parser(bytes);
        let mut header = csv::StringRecord::new();
        match reader.read_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Some((bytes.len(), 0)),
            Err(e) => {
                self.fail(Error::Input(format!("{}: {e}", self.at(line))));
                return None;
            }
        }
        self.decoder = Some(RowDecoder::new::<T>(&header, &self.options.null_values));
        let end = reader.position();
        Some((end.byte() as usize, end.line() - 1))
    }

    /// Load the next chunk; false at the end of input or on error.
    fn next_chunk(&mut self) -> bool {
        let Some(batch) = (self.input)() else {
            return false;
        };
        let Some(chunk) = TextChunk::decode(&batch) else {
            self.fail(Error::Codec("malformed CSV chunk from the host".into()));
            return false;
        };
        if chunk.file != self.file || chunk.first_line == 1 {
            self.decoder = None;
        }
        self.file = chunk.file.to_string();
        if !chunk.header.is_empty() && self.read_header(chunk.header, 1).is_none() {
            return false;
        }
        let mut start = chunk.data_offset(&batch);
        let mut line = chunk.first_line;
        if self.decoder.is_none() {
            if line != 1 {
                // The host sends the header with every split but the first.
                let at = self.at(line);
                self.fail(Error::Codec(format!("{at}: a CSV split came without its header")));
                return false;
            }
            let Some((used, lines)) = self.read_header(chunk.data, line) else {
                return false;
            };
            if self.decoder.is_none() {
                return true; // nothing but blank lines so far
            }
            start += used;
            line += lines;
        }
        let plain = !contains_either(b'"', b'\r', &batch[start..]);
        self.chunk = if plain {
            let ascii = is_ascii(&batch[start..]);
            Chunk::Plain { data: batch, pos: start, line, ascii }
        } else {
            let mut cursor = Cursor::new(batch);
            cursor.set_position(start as u64);
            Chunk::Parsed { reader: self.parser(cursor), first_line: line }
        };
        true
    }

    /// The next row of the current chunk: `None` when the chunk is used up, else the row or the
    /// error message for it.
    fn next_row(&mut self) -> Option<std::result::Result<T, String>> {
        let decoder = self.decoder.as_mut()?;
        match &mut self.chunk {
            Chunk::None => None,
            Chunk::Plain { data, pos, line, ascii } => loop {
                if *pos >= data.len() {
                    return None;
                }
                let start = *pos;
                let keep = decoder.fields_read();
                let (end, count) =
                    cut_line(data, start, self.options.delimiter, keep, &mut self.starts);
                let this_line = *line;
                *pos = end + 1;
                if *line > 0 {
                    *line += 1;
                }
                if end == start {
                    continue; // blank lines are not records
                }
                let (starts, data) = (&self.starts, &data[..end]);
                let field = |i: usize| {
                    let stop = starts.get(i + 1).map_or(end, |s| s - 1);
                    &data[starts[i]..stop]
                };
                let row = decoder.decode(count, field, *ascii);
                return Some(row.map_err(|e| format!("{}{e}", at(&self.file, this_line))));
            },
            Chunk::Parsed { reader, first_line } => match reader.read_byte_record(&mut self.record)
            {
                Ok(false) => None,
                Err(e) => Some(Err(format!("{}: {e}", self.file))),
                Ok(true) => {
                    let in_chunk = self.record.position().map_or(1, |p| p.line());
                    let line = if *first_line == 0 { 0 } else { *first_line + in_chunk - 1 };
                    let record = &self.record;
                    let row = decoder.decode(record.len(), |i| &record[i], false);
                    Some(row.map_err(|e| format!("{}{e}", at(&self.file, line))))
                }
            },
        }
    }
}

/// Where a row is, for messages: the file, and the line when it is known (not 0).
fn at(file: &str, line: u64) -> String {
    if line == 0 { file.to_string() } else { format!("{file} line {line}") }
}

impl<T: Record> Iterator for CsvRows<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        while !self.done {
            if matches!(self.chunk, Chunk::None) {
                if !self.next_chunk() {
                    self.finish();
                }
                continue;
            }
            match self.next_row() {
                None => self.chunk = Chunk::None,
                Some(Ok(row)) => return Some(row),
                Some(Err(message)) if self.options.skip_bad_rows => {
                    self.skipped += 1;
                    self.first_skip.get_or_insert(message);
                }
                Some(Err(message)) => self.fail(Error::Input(message)),
            }
        }
        None
    }
}

impl<T> CsvRows<T> {
    fn finish(&mut self) {
        if !self.done && self.skipped > 0 {
            (self.report_skipped)(self.skipped, self.first_skip.as_deref().unwrap_or(""));
        }
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Flight {
        carrier: String,
        dep_delay: Option<f64>,
    }

    fn chunk(file: &str, first_line: u64, header: &str, data: impl AsRef<[u8]>) -> Vec<u8> {
        let mut buf = Vec::new();
        TextChunk::write_header(&mut buf, file, first_line, header.as_bytes());
        buf.extend_from_slice(data.as_ref());
        buf
    }

    /// The rows, or the error, read from `chunks`.
    fn read<T: Record>(
        chunks: Vec<Vec<u8>>,
        options: CsvOptions,
    ) -> std::result::Result<Vec<T>, String> {
        let mut chunks = chunks.into_iter();
        let rows: Vec<T> = CsvRows::<T>::new(options, Box::new(move || chunks.next())).collect();
        super::super::check_error().map(|()| rows).map_err(|e| e.to_string())
    }

    const HEADER: &str = "year,dep_delay,tailnum,carrier\n";
    const BODY: &str = "2013,2,N1,UA\n\n2013,NA,N2,AA\n2013,-3.5,N3,UA";

    #[test]
    fn plain_and_quoted_chunks_give_the_same_rows() {
        let options = CsvOptions::new().null_value("NA");
        let plain =
            read::<Flight>(vec![chunk("f.csv", 1, "", format!("{HEADER}{BODY}"))], options.clone());
        // The same rows with quoting and CRLF line ends go through the CSV parser.
        let quoted = "2013,2,\"N1\",UA\r\n\r\n2013,NA,N2,\"AA\"\r\n2013,-3.5,N3,UA";
        let parsed =
            read::<Flight>(vec![chunk("f.csv", 1, "", format!("{HEADER}{quoted}"))], options);
        let expected = vec![
            Flight { carrier: "UA".into(), dep_delay: Some(2.0) },
            Flight { carrier: "AA".into(), dep_delay: None },
            Flight { carrier: "UA".into(), dep_delay: Some(-3.5) },
        ];
        assert_eq!(plain.unwrap(), expected);
        assert_eq!(parsed.unwrap(), expected);
    }

    #[test]
    fn a_later_split_uses_the_header_sent_with_it_and_names_exact_lines() {
        let options = CsvOptions::new().null_value("NA");
        let chunks = vec![
            chunk("f.csv", 1, "", format!("{HEADER}2013,1,N1,UA\n")),
            chunk("f.csv", 40, HEADER, "2013,7,N1,B6\n2013,x,N2,B6\n"),
        ];
        let err = read::<Flight>(chunks.clone(), options.clone()).unwrap_err();
        assert!(err.contains("f.csv line 41, column 2 (dep_delay)"), "{err}");
        let chunks = vec![chunk("f.csv", 40, HEADER, "2013,\"7\",N1,B6\n2013,x,N2,B6\n")];
        let err = read::<Flight>(chunks, options).unwrap_err();
        assert!(err.contains("f.csv line 41, column 2 (dep_delay)"), "{err}");
    }

    #[test]
    fn bad_rows_name_file_line_and_cause_on_both_paths() {
        for body in ["2013,1,N1\n", "2013,1,N1,\"UA\",x\n"] {
            let chunks = vec![chunk("f.csv", 1, "", format!("{HEADER}2013,1,N0,UA\n{body}"))];
            let err = read::<Flight>(chunks, CsvOptions::new()).unwrap_err();
            assert!(
                err.contains("f.csv line 3: expected 4 fields as in the header, found"),
                "{err}"
            );
        }
        let chunks = vec![chunk("f.csv", 1, "", b"carrier,dep_delay\n\xff\xfe,1\n")];
        let err = read::<Flight>(chunks, CsvOptions::new()).unwrap_err();
        assert!(err.contains("f.csv line 2, column 1 (carrier): invalid UTF-8"), "{err}");
    }

    #[test]
    fn a_split_without_a_header_is_refused() {
        let chunks = vec![chunk("f.csv", 40, "", "2013,7,N1,B6\n")];
        let err = read::<Flight>(chunks, CsvOptions::new()).unwrap_err();
        assert!(err.contains("f.csv line 40: a CSV split came without its header"), "{err}");
    }

    #[test]
    fn tuples_read_every_column_in_order() {
        let chunks = vec![chunk("t.csv", 1, "", "a,b\n1,x\n2,y\n")];
        let rows = read::<(u32, String)>(chunks, CsvOptions::new()).unwrap();
        assert_eq!(rows, vec![(1, "x".to_string()), (2, "y".to_string())]);
    }
}
