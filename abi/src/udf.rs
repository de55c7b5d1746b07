//! The UDF ABI: how a job calls functions of *another* module (a UDF module from the registry)
//! without linking its code.
//!
//! Design choice: a UDF runs in a sandbox of its own, next to the calling task's, and is called
//! once per *batch* of records, never once per record. Its types are described by [`DataType`],
//! a structural description that maps one to one onto Arrow's logical types, so that a caller
//! that is not a Rust job (the planned SQL surface, handing Arrow batches) can check a call and
//! encode its arguments without knowing Rust. The signatures are read from the module itself
//! (`weft_udf_signatures`), so a module cannot claim one thing in the registry and do another.
//!
//! Exports of a UDF module (made by the SDK's `udf!` macro), besides `memory` and `weft_alloc`:
//! - `weft_udf_signatures() -> i64`: where the MessagePack `Vec<`[`UdfSignature`]`>` is in guest
//!   memory, packed as `ptr << 32 | len`.
//! - `weft_udf_call(function: i32, format: i32, ptr: i32, len: i32) -> i64`: run function number
//!   `function` (its index in the signatures) over the batch at `ptr` (allocated with
//!   `weft_alloc`; the call takes it back), in batch format `format`; returns where the output
//!   batch is (`ptr << 32 | len`, valid until the next call), or [`PACKED_FAILURE`] after
//!   calling `fail`.
//!
//! Batch formats, chosen by the caller per call; the function's signature does not change with
//! them:
//! - [`BATCH_MSGPACK`]: each side a MessagePack array with one element per record, the input as
//!   `function`'s input type, the output one element per input record as its output type.
//! - [`BATCH_PACKED`]: a side whose type is a fixed-width primitive ([`DataType::fixed_width`])
//!   is its values end to end, little-endian, with no header (a `Boolean` is one byte, 0 or 1):
//!   the layout of an Arrow primitive array's values buffer without nulls, so that the count is
//!   the length over the width. Other sides are MessagePack as in [`BATCH_MSGPACK`]. Per-record
//!   decoding is what a call over a cheap function costs; this format has none.
//!
//! An Arrow IPC format would be a third code.
//!
//! Imports of a job that calls UDFs:
//! - `udf_bind(ptr: i32, len: i32) -> i64` (driver only): resolve the [`UdfLookup`] at `ptr`;
//!   the answer, a MessagePack `Result<`[`UdfBinding`]`, String>`, is read with `reply_read`.
//! - `udf_call(slot: i32, function: i32, format: i32, ptr: i32, len: i32) -> i64` (tasks): run
//!   a bound function over a batch in `format`; returns the output's length, read with
//!   `udf_read(ptr: i32)`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Export of a UDF module: its signatures.
pub const EXPORT_UDF_SIGNATURES: &str = "weft_udf_signatures";
/// Export of a UDF module: call one of its functions over a batch.
pub const EXPORT_UDF_CALL: &str = "weft_udf_call";
/// Import of a driver: bind a UDF by module name and function.
pub const IMPORT_UDF_BIND: &str = "udf_bind";
/// Import of a task: call a bound UDF over a batch.
pub const IMPORT_UDF_CALL: &str = "udf_call";
/// Import of a task: copy the output announced by `udf_call`.
pub const IMPORT_UDF_READ: &str = "udf_read";

/// Batch format: a MessagePack array of records.
pub const BATCH_MSGPACK: u32 = 0;
/// Batch format: fixed-width primitive sides as packed little-endian values, the others as
/// MessagePack arrays.
pub const BATCH_PACKED: u32 = 1;

/// Most UDF modules one job may bind.
pub const MAX_UDF_MODULES: usize = 64;

/// The type of a UDF's argument or result, as Arrow would see it.
///
/// Rust types map as `bool` → `Boolean`, `i8..i64` → `Int8..Int64`, `u8..u64` → `UInt8..UInt64`,
/// `f32`/`f64` → `Float32`/`Float64`, `String` → `Utf8`, `Option<T>` → `Nullable(T)`, `Vec<T>` →
/// `List(T)`, tuples and structs → `Struct` (a tuple's fields are named `0`, `1`, …), `()` →
/// `Null`. On the wire a struct is a MessagePack array of its fields in order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    /// No value: `()`.
    Null,
    /// `bool`.
    Boolean,
    /// `i8`.
    Int8,
    /// `i16`.
    Int16,
    /// `i32`.
    Int32,
    /// `i64`.
    Int64,
    /// `u8`.
    UInt8,
    /// `u16`.
    UInt16,
    /// `u32`.
    UInt32,
    /// `u64`.
    UInt64,
    /// `f32`.
    Float32,
    /// `f64`.
    Float64,
    /// UTF-8 text: `String`.
    Utf8,
    /// A value that may be missing: `Option<T>`.
    Nullable(Box<DataType>),
    /// A variable-length list: `Vec<T>`.
    List(Box<DataType>),
    /// Named fields in order: a struct or a tuple.
    Struct(Vec<Field>),
}

/// One field of a [`DataType::Struct`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// Its name (`0`, `1`, … for a tuple).
    pub name: String,
    /// Its type.
    pub data_type: DataType,
}

impl DataType {
    /// Bytes per value of a fixed-width primitive (which [`BATCH_PACKED`] packs), `None` for the
    /// other types.
    pub fn fixed_width(&self) -> Option<usize> {
        Some(match self {
            DataType::Boolean | DataType::Int8 | DataType::UInt8 => 1,
            DataType::Int16 | DataType::UInt16 => 2,
            DataType::Int32 | DataType::UInt32 | DataType::Float32 => 4,
            DataType::Int64 | DataType::UInt64 | DataType::Float64 => 8,
            _ => return None,
        })
    }
}

impl fmt::Display for DataType {
    /// Rust-like notation: `String`, `Option<u64>`, `Vec<(String, f64)>`, `{ip: String}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            DataType::Null => "()",
            DataType::Boolean => "bool",
            DataType::Int8 => "i8",
            DataType::Int16 => "i16",
            DataType::Int32 => "i32",
            DataType::Int64 => "i64",
            DataType::UInt8 => "u8",
            DataType::UInt16 => "u16",
            DataType::UInt32 => "u32",
            DataType::UInt64 => "u64",
            DataType::Float32 => "f32",
            DataType::Float64 => "f64",
            DataType::Utf8 => "String",
            DataType::Nullable(t) => return write!(f, "Option<{t}>"),
            DataType::List(t) => return write!(f, "Vec<{t}>"),
            DataType::Struct(fields) => {
                let tuple = fields.iter().enumerate().all(|(i, x)| x.name == i.to_string());
                let (open, close) = if tuple { ("(", ")") } else { ("{", "}") };
                f.write_str(open)?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if tuple {
                        write!(f, "{}", field.data_type)?;
                    } else {
                        write!(f, "{}: {}", field.name, field.data_type)?;
                    }
                }
                if tuple && fields.len() == 1 {
                    f.write_str(",")?;
                }
                return f.write_str(close);
            }
        };
        f.write_str(name)
    }
}

/// What a UDF module declares about one of its functions.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UdfSignature {
    /// The function's name.
    pub name: String,
    /// Its argument's type (several arguments are one struct).
    pub input: DataType,
    /// Its result's type.
    pub output: DataType,
    /// Its documentation comment, if any.
    #[serde(default)]
    pub doc: String,
}

impl fmt::Display for UdfSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}) -> {}", self.name, self.input, self.output)
    }
}

/// What a driver asks for when it binds a UDF: which function of which module, called with which
/// types.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UdfLookup {
    /// The module: `TENANT/NAME[@VERSION]` or a module hash.
    pub module: String,
    /// The function's name.
    pub function: String,
    /// The type the job passes.
    pub input: DataType,
    /// The type the job expects back.
    pub output: DataType,
}

/// The host's answer to a [`UdfLookup`] that checked: how tasks call the function.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UdfBinding {
    /// The module's slot in the job (the same for every function of one module).
    pub slot: u32,
    /// The function's index in the module's signatures.
    pub function: u32,
    /// The module as resolved: `TENANT/NAME@VERSION`, or its hash.
    pub module: String,
}

/// A UDF module a job bound, as every task of the job carries it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UdfModuleRef {
    /// Its slot in the job.
    pub slot: u32,
    /// Its content address (SHA-256, hex), by which nodes fetch and compile it once.
    pub hash: String,
    /// Its resolved name, for error messages.
    pub name: String,
}

/// Check a call of `lookup.function` against the module's `signatures`; returns the function's
/// index, or a message naming the UDF and both signatures.
pub fn check_call(
    module: &str,
    signatures: &[UdfSignature],
    lookup: &UdfLookup,
) -> Result<u32, String> {
    let Some(index) = signatures.iter().position(|s| s.name == lookup.function) else {
        let offered: Vec<String> = signatures.iter().map(|s| s.to_string()).collect();
        let offered = if offered.is_empty() {
            "it declares no UDFs (is it built with `weft::udf!`?)".to_string()
        } else {
            format!("it declares {}", offered.join(", "))
        };
        return Err(format!(
            "UDF module {module} has no function `{}`: {offered}",
            lookup.function
        ));
    };
    let declared = &signatures[index];
    if declared.input != lookup.input || declared.output != lookup.output {
        let called = UdfSignature {
            name: lookup.function.clone(),
            input: lookup.input.clone(),
            output: lookup.output.clone(),
            doc: String::new(),
        };
        return Err(format!(
            "UDF {module} `{}` does not match its call: the module declares {declared}, the job \
             calls it as {called}",
            lookup.function
        ));
    }
    u32::try_from(index).map_err(|_| format!("UDF module {module} declares too many functions"))
}

/// What the UDF exports return for a failure (no batch is 4 GiB long at the top of memory).
pub const PACKED_FAILURE: i64 = -1;

/// Pack a guest pointer and length into the `i64` the UDF exports return.
pub fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// Unpack what [`pack`] made; `None` for [`PACKED_FAILURE`].
pub fn unpack(packed: i64) -> Option<(u32, u32)> {
    (packed != PACKED_FAILURE).then_some(((packed as u64 >> 32) as u32, packed as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(name: &str, input: DataType, output: DataType) -> UdfSignature {
        UdfSignature { name: name.into(), input, output, doc: String::new() }
    }

    fn lookup(function: &str, input: DataType, output: DataType) -> UdfLookup {
        UdfLookup { module: "acme/geo".into(), function: function.into(), input, output }
    }

    #[test]
    fn types_print_as_rust_and_structs_with_their_fields() {
        let pair = DataType::Struct(vec![
            Field { name: "0".into(), data_type: DataType::Utf8 },
            Field { name: "1".into(), data_type: DataType::Float64 },
        ]);
        assert_eq!(DataType::List(Box::new(pair)).to_string(), "Vec<(String, f64)>");
        let record = DataType::Struct(vec![Field { name: "ip".into(), data_type: DataType::Utf8 }]);
        assert_eq!(DataType::Nullable(Box::new(record)).to_string(), "Option<{ip: String}>");
        let one = DataType::Struct(vec![Field { name: "0".into(), data_type: DataType::Int64 }]);
        assert_eq!(one.to_string(), "(i64,)");
    }

    #[test]
    fn calls_are_checked_against_the_declared_signature() {
        let opt = || DataType::Nullable(Box::new(DataType::Utf8));
        let sigs =
            [sig("len", DataType::Utf8, DataType::UInt64), sig("country", DataType::Utf8, opt())];
        assert_eq!(
            check_call("acme/geo@1", &sigs, &lookup("country", DataType::Utf8, opt())),
            Ok(1)
        );
        let wrong = check_call("acme/geo@1", &sigs, &lookup("country", DataType::UInt64, opt()))
            .unwrap_err();
        assert!(wrong.contains("acme/geo@1 `country`"), "{wrong}");
        assert!(wrong.contains("declares country(String) -> Option<String>"), "{wrong}");
        assert!(wrong.contains("calls it as country(u64) -> Option<String>"), "{wrong}");
        let missing =
            check_call("acme/geo@1", &sigs, &lookup("city", DataType::Utf8, opt())).unwrap_err();
        assert!(missing.contains("no function `city`"), "{missing}");
        assert!(missing.contains("len(String) -> u64"), "{missing}");
        let none = check_call("x", &[], &lookup("f", DataType::Utf8, opt())).unwrap_err();
        assert!(none.contains("declares no UDFs"), "{none}");
    }

    #[test]
    fn pointers_and_lengths_pack_and_unpack() {
        assert_eq!(unpack(pack(0xdead_beef, 0xffff_ffff)), Some((0xdead_beef, 0xffff_ffff)));
        assert_eq!(unpack(PACKED_FAILURE), None);
        assert_eq!(unpack(pack(0x8000_0000, 3)), Some((0x8000_0000, 3)));
    }
}
