//! The CSV source: rows of line-aligned CSV chunks deserialised into the user's record type by
//! header name, with file, line and column in every error.

use super::{Erased, Iter, decode_arg, set_error};
use crate::abi::{CsvOptions, TextChunk};
use crate::{Error, Record, Result};
use std::io::Cursor;

/// Rows of type `T`; the argument is the encoded [`CsvOptions`].
pub(crate) fn csv_rows<T: Record>(arg: &[u8], _op: u32) -> Result<Erased> {
    let options: CsvOptions = decode_arg(arg, "csv source")?;
    let iter: Iter<T> = Box::new(CsvRows::<T> {
        options,
        reader: None,
        file: String::new(),
        first_line: 0,
        header: None,
        record: csv::StringRecord::new(),
        skipped: 0,
        first_skip: None,
        done: false,
        _t: std::marker::PhantomData,
    });
    Ok(Erased::new(iter))
}

struct CsvRows<T> {
    options: CsvOptions,
    reader: Option<csv::Reader<Cursor<Vec<u8>>>>,
    file: String,
    first_line: u64,
    header: Option<csv::StringRecord>,
    record: csv::StringRecord,
    skipped: u64,
    first_skip: Option<String>,
    done: bool,
    _t: std::marker::PhantomData<T>,
}

impl<T: Record> CsvRows<T> {
    /// Load the next chunk; false at end of input.
    fn next_chunk(&mut self) -> bool {
        let Some(batch) = crate::host::input_next() else {
            return false;
        };
        let Some(chunk) = TextChunk::decode(&batch) else {
            set_error(Error::Codec("malformed CSV chunk from the host".into()));
            return false;
        };
        if chunk.file != self.file || chunk.first_line == 1 {
            self.header = None;
        }
        self.file = chunk.file.to_string();
        self.first_line = chunk.first_line;
        let start = TextChunk::header_len(chunk.file) as u64;
        let mut cursor = Cursor::new(batch);
        cursor.set_position(start);
        self.reader = Some(
            csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(self.options.delimiter)
                .from_reader(cursor),
        );
        true
    }

    fn line_of(&self, record: &csv::StringRecord) -> u64 {
        let in_chunk = record.position().map_or(1, |p| p.line());
        if self.first_line == 0 { 0 } else { self.first_line + in_chunk - 1 }
    }

    fn at(&self, line: u64) -> String {
        if line == 0 { self.file.clone() } else { format!("{} line {line}", self.file) }
    }

    /// Parse the current record; `Err` carries a message naming file, line and column.
    fn parse(&mut self) -> std::result::Result<T, String> {
        let header = self.header.as_ref().expect("header read before rows");
        let line = self.line_of(&self.record);
        if self.record.len() != header.len() {
            return Err(format!(
                "{}: expected {} fields as in the header, found {}",
                self.at(line),
                header.len(),
                self.record.len()
            ));
        }
        let nulls = &self.options.null_values;
        let row = if !nulls.is_empty() && self.record.iter().any(|f| nulls.iter().any(|n| n == f)) {
            self.record.iter().map(|f| if nulls.iter().any(|n| n == f) { "" } else { f }).collect()
        } else {
            std::mem::take(&mut self.record)
        };
        let parsed = row.deserialize::<T>(Some(header)).map_err(|e| {
            let column = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.field().map(|i| {
                    let name = header.get(i as usize).unwrap_or("?");
                    format!(", column {} ({name})", i + 1)
                }),
                _ => None,
            };
            let reason = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.kind().to_string(),
                other => format!("{other:?}"),
            };
            format!("{}{}: {reason}", self.at(line), column.unwrap_or_default())
        });
        self.record = row;
        parsed
    }
}

impl<T: Record> Iterator for CsvRows<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        while !self.done {
            let Some(reader) = self.reader.as_mut() else {
                if !self.next_chunk() {
                    self.finish();
                }
                continue;
            };
            match reader.read_record(&mut self.record) {
                Ok(false) => self.reader = None,
                Err(e) => {
                    set_error(Error::Input(format!("{}: {e}", self.file)));
                    self.done = true;
                }
                Ok(true) if self.header.is_none() => {
                    if self.first_line > 1 {
                        set_error(Error::Input(format!(
                            "{}: a CSV file must be read whole, from its header row",
                            self.file
                        )));
                        self.done = true;
                    }
                    self.header = Some(self.record.clone());
                }
                Ok(true) => match self.parse() {
                    Ok(row) => return Some(row),
                    Err(message) if self.options.skip_bad_rows => {
                        self.skipped += 1;
                        self.first_skip.get_or_insert(message);
                    }
                    Err(message) => {
                        set_error(Error::Input(message));
                        self.done = true;
                    }
                },
            }
        }
        None
    }
}

impl<T> CsvRows<T> {
    fn finish(&mut self) {
        self.done = true;
        if self.skipped > 0 {
            crate::host::bad_rows(self.skipped, self.first_skip.as_deref().unwrap_or(""));
        }
    }
}
