//! Decoding CSV rows into records, with column projection: only the columns the record type
//! names are decoded.
//!
//! A CSV file often has many more columns than a job reads (nycflights13 has 19; the flights
//! example reads 2). Deserialising by header name with serde would look up every column's name
//! on every row and validate, null-check and skip each one. Instead the record type's field names
//! are learnt once, by asking serde's derived `Deserialize` which fields it expects, and each row
//! is cut down to those columns before it is deserialised.
//!
//! Only a struct with named fields can say which fields it wants. For any other record type
//! (tuples, maps, `#[serde(flatten)]`), or when a field is not found among the header's names
//! (an `alias`, a `default` field), every column is kept and decoding is as before. Columns the
//! record type does not name are not read at all, so `#[serde(deny_unknown_fields)]` does not
//! see them and invalid UTF-8 in them is not an error.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;

/// The columns of a file that rows are cut down to, and the header of the cut-down rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Projection {
    /// Indices into the file's columns, in the order they are kept.
    pub columns: Vec<usize>,
    /// The header of the kept columns, for deserialising by name.
    pub header: csv::StringRecord,
}

impl Projection {
    /// The projection for record type `T` on a file with `header`.
    pub fn new<'de, T: Deserialize<'de>>(header: &csv::StringRecord) -> Projection {
        let all = || Projection { columns: (0..header.len()).collect(), header: header.clone() };
        let Some(fields) = struct_fields::<T>() else {
            return all();
        };
        let mut columns = Vec::with_capacity(fields.len());
        for field in fields {
            match header.iter().position(|h| h == *field) {
                Some(i) => columns.push(i),
                None => return all(),
            }
        }
        columns.sort_unstable();
        let header = columns.iter().map(|&i| &header[i]).collect();
        Projection { columns, header }
    }
}

/// Turns the raw fields of one row into a `T`: field count check, projection, UTF-8 check,
/// null values, deserialisation by header name. Errors name the column.
pub(crate) struct RowDecoder {
    /// Columns in the file's header.
    width: usize,
    projection: Projection,
    null_values: Vec<String>,
    row: csv::StringRecord,
}

impl RowDecoder {
    /// A decoder of `T`s for a file with `header`; `null_values` read as missing.
    pub fn new<T: serde::de::DeserializeOwned>(
        header: &csv::StringRecord,
        null_values: &[String],
    ) -> RowDecoder {
        RowDecoder {
            width: header.len(),
            projection: Projection::new::<T>(header),
            null_values: null_values.to_vec(),
            row: csv::StringRecord::new(),
        }
    }

    /// Decode a row of `count` fields, `field(i)` being the bytes of column `i`; the error is
    /// the message without its file and line.
    pub fn decode<'a, T: serde::de::DeserializeOwned>(
        &mut self,
        count: usize,
        field: impl Fn(usize) -> &'a [u8],
    ) -> Result<T, String> {
        if count != self.width {
            return Err(format!(
                ": expected {} fields as in the header, found {count}",
                self.width
            ));
        }
        let p = &self.projection;
        self.row.clear();
        for (k, &c) in p.columns.iter().enumerate() {
            let text = std::str::from_utf8(field(c)).map_err(|e| {
                format!(", column {} ({}): invalid UTF-8 ({e})", c + 1, &p.header[k])
            })?;
            let null = self.null_values.iter().any(|n| n == text);
            self.row.push_field(if null { "" } else { text });
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
