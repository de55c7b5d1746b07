//! A serde deserializer that builds a struct straight from a CSV row's fields.
//!
//! Design choice: for a record type that is a struct with named fields, the row's columns are
//! handed to the struct's derived `Deserialize` as a sequence in the struct's own field order, one
//! column per field, so no column name is looked up or compared per row and the fields are not
//! first copied into a `csv::StringRecord`. A single field is read as the `csv` crate reads one
//! (empty is `None`, numbers by `str::parse`, `0x` integers in hex, unit enum variants by name),
//! so answers and messages do not depend on which way a row went. A field whose type wants more
//! than one column (a nested struct, tuple, sequence or map) reports [`RowError::Unsupported`],
//! and the caller decodes that file through the `csv` crate instead.

use serde::de::{self, DeserializeSeed, IntoDeserializer, SeqAccess, Visitor};
use std::fmt;

/// Why a row did not decode.
#[derive(Debug)]
pub(crate) enum RowError {
    /// The record type needs the general decoder.
    Unsupported,
    /// A field could not be read at all; the message names it.
    Finished(String),
    /// Field `k` (in the struct's order) is bad.
    Field { k: usize, message: String },
    /// The record as a whole is bad.
    Message(String),
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::Unsupported => f.write_str("needs more than one column for a field"),
            RowError::Finished(message)
            | RowError::Field { message, .. }
            | RowError::Message(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for RowError {}

impl de::Error for RowError {
    fn custom<M: fmt::Display>(message: M) -> Self {
        RowError::Message(message.to_string())
    }
}

/// Decode a `T` from `count` fields, `field(k)` being the text of the struct's field `k`;
/// `field` itself fails with a finished message (a field that is not UTF-8).
pub(crate) fn decode_row<'a, T, F>(count: usize, field: F) -> Result<T, RowError>
where
    T: serde::de::DeserializeOwned,
    F: Fn(usize) -> Result<&'a str, String>,
{
    T::deserialize(Row { count, field })
}

/// The row as a whole: a struct whose fields come in order.
struct Row<F> {
    count: usize,
    field: F,
}

impl<'de, 'a, F: Fn(usize) -> Result<&'a str, String>> de::Deserializer<'de> for Row<F> {
    type Error = RowError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, RowError> {
        Err(RowError::Unsupported)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, RowError> {
        visitor.visit_seq(Fields { row: self, next: 0 })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The row's fields, handed out in order.
struct Fields<F> {
    row: Row<F>,
    next: usize,
}

impl<'de, 'a, F: Fn(usize) -> Result<&'a str, String>> SeqAccess<'de> for Fields<F> {
    type Error = RowError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, RowError> {
        let k = self.next;
        if k >= self.row.count {
            return Ok(None);
        }
        self.next += 1;
        let text = (self.row.field)(k).map_err(RowError::Finished)?;
        match seed.deserialize(Field(text)) {
            Ok(value) => Ok(Some(value)),
            Err(RowError::Message(message)) => Err(RowError::Field { k, message }),
            Err(other) => Err(other),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.row.count - self.next)
    }
}

/// One field's text.
struct Field<'a>(&'a str);

/// A decimal integer of at most 19 digits with an optional sign, as (negative, magnitude), or
/// `None` for anything else. 19 digits cannot overflow a `u64`, so no step is checked: on wasm32,
/// `str::parse` checks every step of a number longer than 16 digits with a 128-bit multiply
/// (`__multi3`), which made parsing 19-digit keys half of a sort's map side. Anything this does
/// not take goes to `str::parse`, so values and messages are the same either way.
fn short_decimal(s: &str) -> Option<(bool, u64)> {
    let (negative, digits) = match s.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut value = 0u64;
    for &d in digits {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + u64::from(digit);
    }
    Some((negative, value))
}

/// `short_decimal`'s result as `T`, if it is one (else `str::parse` says why not). An unsigned
/// type takes no `-` sign at all, not even on zero, as with `str::parse`.
fn from_short<T: TryFrom<u64> + TryFrom<i128>>((negative, magnitude): (bool, u64)) -> Option<T> {
    if negative {
        let signed = T::try_from(-1i128).is_ok();
        if !signed {
            return None;
        }
        T::try_from(-i128::from(magnitude)).ok()
    } else {
        <T as TryFrom<u64>>::try_from(magnitude).ok()
    }
}

macro_rules! parse_int {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
            if let Some(n) = short_decimal(self.0).and_then(from_short::<$ty>) {
                return visitor.$visit(n);
            }
            let parsed = match self.0.strip_prefix("0x") {
                Some(digits) => <$ty>::from_str_radix(digits, 16),
                None => self.0.parse(),
            };
            visitor.$visit(parsed.map_err(de::Error::custom)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Field<'_> {
    type Error = RowError;

    /// A type that takes anything: the field read as the most specific of bool, integer, float
    /// and string that it is.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        let s = self.0;
        if let Ok(b) = s.parse::<bool>() {
            visitor.visit_bool(b)
        } else if let Ok(n) = s.parse::<u64>() {
            visitor.visit_u64(n)
        } else if let Ok(n) = s.parse::<i64>() {
            visitor.visit_i64(n)
        } else if let Ok(n) = s.parse::<u128>() {
            visitor.visit_u128(n)
        } else if let Ok(n) = s.parse::<i128>() {
            visitor.visit_i128(n)
        } else if let Ok(n) = s.parse::<f64>() {
            visitor.visit_f64(n)
        } else {
            visitor.visit_str(s)
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_bool(self.0.parse().map_err(de::Error::custom)?)
    }

    parse_int! {
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64,
        deserialize_u128 visit_u128 u128, deserialize_i8 visit_i8 i8,
        deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64, deserialize_i128 visit_i128 i128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_f32(self.0.parse().map_err(de::Error::custom)?)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_f64(self.0.parse().map_err(de::Error::custom)?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        let mut chars = self.0.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(de::Error::custom(format_args!(
                "expected single character but got {} characters in '{}'",
                self.0.chars().count(),
                self.0
            ))),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_bytes(self.0.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_bytes(self.0.as_bytes())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        if self.0.is_empty() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        visitor.visit_newtype_struct(self)
    }

    /// An enum: the field names a unit variant.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, RowError> {
        visitor.visit_enum(IntoDeserializer::<RowError>::into_deserializer(self.0))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_unit()
    }

    fn deserialize_seq<V: Visitor<'de>>(self, _: V) -> Result<V::Value, RowError> {
        Err(RowError::Unsupported)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, RowError> {
        Err(RowError::Unsupported)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _: V,
    ) -> Result<V::Value, RowError> {
        Err(RowError::Unsupported)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, RowError> {
        Err(RowError::Unsupported)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, RowError> {
        Err(RowError::Unsupported)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, RowError> {
        Err(RowError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    enum Kind {
        Scheduled,
        Charter,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Minutes(i32);

    #[derive(Deserialize, Debug, PartialEq)]
    struct Flight {
        carrier: String,
        delay: Option<f64>,
        flags: u16,
        late: bool,
        gate: char,
        kind: Kind,
        air_time: Minutes,
    }

    fn decode<T: serde::de::DeserializeOwned>(fields: &[&str]) -> Result<T, RowError> {
        let fields: Vec<&str> = fields.to_vec();
        decode_row(fields.len(), |k| Ok(fields[k]))
    }

    #[test]
    fn fields_are_read_in_the_structs_order_like_the_csv_crate_reads_them() {
        let row: Flight = decode(&["UA", "", "0x1f", "true", "B", "Charter", "-12"]).unwrap();
        let expected = Flight {
            carrier: "UA".into(),
            delay: None,
            flags: 31,
            late: true,
            gate: 'B',
            kind: Kind::Charter,
            air_time: Minutes(-12),
        };
        assert_eq!(row, expected);
        let row: Flight = decode(&["AA", "2.5", "7", "false", "C", "Scheduled", "0"]).unwrap();
        assert_eq!((row.delay, row.flags, row.kind), (Some(2.5), 7, Kind::Scheduled));
    }

    #[test]
    fn a_bad_field_is_named_by_its_place_in_the_struct() {
        let cases = [
            (["UA", "x", "1", "true", "B", "Charter", "1"], 1, "invalid float literal"),
            (["UA", "1", "-1", "true", "B", "Charter", "1"], 2, "invalid digit"),
            (["UA", "1", "1", "yes", "B", "Charter", "1"], 3, "`true` or `false`"),
            (["UA", "1", "1", "true", "BC", "Charter", "1"], 4, "single character"),
            (["UA", "1", "1", "true", "B", "Cargo", "1"], 5, "unknown variant `Cargo`"),
        ];
        for (fields, want_k, want) in cases {
            match decode::<Flight>(&fields) {
                Err(RowError::Field { k, message }) => {
                    assert_eq!(k, want_k, "{message}");
                    assert!(message.contains(want), "{message}");
                }
                other => panic!("{fields:?}: expected an error in field {want_k}, got {other:?}"),
            }
        }
        // A field that cannot be read is passed on as it is.
        let err = decode_row::<Flight, _>(7, |_| Err("unreadable".to_string())).unwrap_err();
        assert!(matches!(err, RowError::Finished(m) if m == "unreadable"));
    }

    #[test]
    fn integers_read_the_same_as_str_parse_reads_them() {
        fn same<T>(text: &str)
        where
            T: std::str::FromStr + TryFrom<u64> + TryFrom<i128> + PartialEq + fmt::Debug,
        {
            let fast = short_decimal(text).and_then(from_short::<T>);
            let slow = text.parse::<T>().ok();
            // Where the short path answers, it answers as `str::parse` does; where it does not,
            // `str::parse` is asked (and may succeed or fail).
            if fast.is_some() {
                assert_eq!(fast, slow, "{text:?} as {}", std::any::type_name::<T>());
            }
        }
        let cases = [
            "0",
            "7",
            "+7",
            "-7",
            "-0",
            "+",
            "-",
            "",
            "007",
            "255",
            "256",
            "-128",
            "-129",
            "4294967295",
            "4294967296",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "9999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "12a",
            " 1",
            "1 ",
            "１",
        ];
        for text in cases {
            same::<u8>(text);
            same::<i8>(text);
            same::<u16>(text);
            same::<i32>(text);
            same::<u32>(text);
            same::<i64>(text);
            same::<u64>(text);
            same::<u128>(text);
            same::<i128>(text);
        }
        // The short path takes up to 19 digits and leaves longer numbers and other text alone.
        assert_eq!(short_decimal("9999999999999999999"), Some((false, 9_999_999_999_999_999_999)));
        assert_eq!(short_decimal("-42"), Some((true, 42)));
        assert_eq!(short_decimal("18446744073709551615"), None);
        assert_eq!(short_decimal("0x1f"), None);
        // And through the deserializer: a 19-digit key, a 20-digit one, an overflow's message.
        #[derive(Deserialize, Debug, PartialEq)]
        struct Row {
            key: u64,
            small: i8,
        }
        let row: Row = decode(&["9223372036854775807", "-128"]).unwrap();
        assert_eq!(row, Row { key: 9_223_372_036_854_775_807, small: -128 });
        let row: Row = decode(&["18446744073709551615", "+1"]).unwrap();
        assert_eq!(row, Row { key: u64::MAX, small: 1 });
        match decode::<Row>(&["18446744073709551616", "1"]) {
            Err(RowError::Field { k: 0, message }) => assert!(message.contains("too large")),
            other => panic!("expected an overflow in field 0, got {other:?}"),
        }
        match decode::<Row>(&["1", "-129"]) {
            Err(RowError::Field { k: 1, message }) => assert!(message.contains("too small")),
            other => panic!("expected an underflow in field 1, got {other:?}"),
        }
    }

    #[test]
    fn fields_spanning_columns_and_non_structs_are_left_to_the_csv_crate() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Nested {
            carrier: String,
            span: (u32, u32),
        }
        assert!(matches!(decode::<Nested>(&["UA", "1"]), Err(RowError::Unsupported)));
        assert!(matches!(decode::<(String, u32)>(&["UA", "1"]), Err(RowError::Unsupported)));
        assert!(matches!(decode::<Vec<String>>(&["UA"]), Err(RowError::Unsupported)));
    }
}
