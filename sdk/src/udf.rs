//! UDFs: functions of another module, called by name (see [`Context::udf`] and the
//! [`udf!`](crate::udf!) macro that makes such a module).
//!
//! A UDF module is built with this SDK and pushed to the registry once; jobs of any tenant that
//! may see it call its functions without linking its code. The host runs it in a sandbox of its
//! own next to the calling task, and calls it once per batch of records (a few thousand), so the
//! cost per record is encoding it and decoding the answer, never a call across sandboxes; and
//! numbers and booleans cross as packed little-endian values, with no per-record encoding.
//!
//! Types are checked when the driver binds the function, before any task runs: both sides
//! describe their types as [`UdfType`]s (Arrow's logical types, see
//! [`weft_abi::udf::DataType`]), and the host compares the job's call with what the module
//! declares.

use crate::{Context, Dataset, Error, Record, Result};
use std::marker::PhantomData;
use std::panic::Location;
pub use weft_abi::udf::{DataType, Field};
use weft_abi::udf::{UdfBinding, UdfLookup};

/// A type that can cross into a UDF: it has a [`DataType`] both sides agree on.
///
/// Implemented for `bool`, the integers, `f32`, `f64`, `String`, `()`, `Option<T>`, `Vec<T>` and
/// tuples of up to six; implement it for a struct with [`udf_type!`](crate::udf_type!).
pub trait UdfType: Sized {
    /// The type's description.
    fn data_type() -> DataType;

    /// Bytes of one value in a packed batch ([`weft_abi::udf::BATCH_PACKED`]): the
    /// fixed-width primitives' width, 0 for a type that crosses as MessagePack.
    #[doc(hidden)]
    const PACKED_WIDTH: usize = 0;

    /// Append the value's packed bytes (only called when `PACKED_WIDTH > 0`).
    #[doc(hidden)]
    fn write_packed(&self, _out: &mut Vec<u8>) {
        unreachable!("a type with no packed form")
    }

    /// The value of `PACKED_WIDTH` packed bytes (only called when `PACKED_WIDTH > 0`).
    #[doc(hidden)]
    fn read_packed(_bytes: &[u8]) -> Self {
        unreachable!("a type with no packed form")
    }
}

macro_rules! primitive {
    ($($t:ty => $d:ident),* $(,)?) => {
        $(impl UdfType for $t {
            fn data_type() -> DataType {
                DataType::$d
            }
        })*
    };
}

primitive!(() => Null, String => Utf8);

/// The fixed-width primitives, which also cross packed: their little-endian bytes.
macro_rules! packed {
    ($($t:ty => $d:ident),* $(,)?) => {
        $(impl UdfType for $t {
            fn data_type() -> DataType {
                DataType::$d
            }

            const PACKED_WIDTH: usize = std::mem::size_of::<$t>();

            fn write_packed(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            fn read_packed(bytes: &[u8]) -> Self {
                let mut le = [0u8; std::mem::size_of::<$t>()];
                le.copy_from_slice(bytes);
                <$t>::from_le_bytes(le)
            }
        })*
    };
}

packed!(
    i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64, u8 => UInt8, u16 => UInt16,
    u32 => UInt32, u64 => UInt64, f32 => Float32, f64 => Float64,
);

impl UdfType for bool {
    fn data_type() -> DataType {
        DataType::Boolean
    }

    const PACKED_WIDTH: usize = 1;

    fn write_packed(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }

    fn read_packed(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
}

/// How a batch of `In` into a UDF answering `Out` is encoded: packed when either side can be.
#[doc(hidden)]
pub fn batch_format<In: UdfType, Out: UdfType>() -> u32 {
    if In::PACKED_WIDTH > 0 || Out::PACKED_WIDTH > 0 {
        weft_abi::udf::BATCH_PACKED
    } else {
        weft_abi::udf::BATCH_MSGPACK
    }
}

/// The values of one side of a batch in `format`.
#[doc(hidden)]
pub fn decode_side<T: UdfType + serde::de::DeserializeOwned>(
    bytes: &[u8],
    format: u32,
) -> std::result::Result<Vec<T>, String> {
    if format == weft_abi::udf::BATCH_PACKED && T::PACKED_WIDTH > 0 {
        if !bytes.len().is_multiple_of(T::PACKED_WIDTH) {
            return Err(format!(
                "a packed batch of {} bytes is not a whole number of {}-byte values",
                bytes.len(),
                T::PACKED_WIDTH
            ));
        }
        Ok(bytes.chunks_exact(T::PACKED_WIDTH).map(T::read_packed).collect())
    } else {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// Append `values` to `out` as one side of a batch in `format`.
#[doc(hidden)]
pub fn encode_side<T: UdfType + serde::Serialize>(
    values: impl ExactSizeIterator<Item = T>,
    format: u32,
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    if format == weft_abi::udf::BATCH_PACKED && T::PACKED_WIDTH > 0 {
        out.reserve(values.len() * T::PACKED_WIDTH);
        values.for_each(|v| v.write_packed(out));
        Ok(())
    } else {
        let mut encoder = rmp_serde::Serializer::new(out);
        serde::Serializer::collect_seq(&mut encoder, values).map_err(|e| e.to_string())
    }
}

impl<T: UdfType> UdfType for Option<T> {
    fn data_type() -> DataType {
        DataType::Nullable(Box::new(T::data_type()))
    }
}

impl<T: UdfType> UdfType for Vec<T> {
    fn data_type() -> DataType {
        DataType::List(Box::new(T::data_type()))
    }
}

macro_rules! tuple {
    ($($name:ident $index:tt),+) => {
        impl<$($name: UdfType),+> UdfType for ($($name,)+) {
            fn data_type() -> DataType {
                DataType::Struct(vec![
                    $(Field { name: stringify!($index).into(), data_type: $name::data_type() }),+
                ])
            }
        }
    };
}

tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);
tuple!(A 0, B 1, C 2, D 3, E 4);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5);

/// Make a struct a [`UdfType`] by listing its fields **in declaration order** (records travel
/// as arrays of their fields in that order):
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Hit { ip: String, bytes: u64 }
/// weft::udf_type!(Hit { ip: String, bytes: u64 });
/// ```
///
/// A field missing from the list, or listed with another type, is a compile error.
#[macro_export]
macro_rules! udf_type {
    ($name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        impl $crate::udf::UdfType for $name {
            fn data_type() -> $crate::udf::DataType {
                // Every field is named here, with its type.
                #[allow(dead_code)]
                fn fields_match(x: $name) {
                    let $name { $($field),* } = x;
                    $(let _: $ty = $field;)*
                }
                $crate::udf::DataType::Struct(vec![$($crate::udf::Field {
                    name: stringify!($field).into(),
                    data_type: <$ty as $crate::udf::UdfType>::data_type(),
                }),*])
            }
        }
    };
}

/// A UDF bound by [`Context::udf`]: function `function` of a registry module, from `In` to
/// `Out`. Use it with [`Dataset::map_udf`], [`Dataset::filter_udf`] or
/// [`Dataset::flat_map_udf`].
pub struct Udf<In, Out> {
    binding: UdfBinding,
    function: String,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out> Clone for Udf<In, Out> {
    fn clone(&self) -> Self {
        Udf { binding: self.binding.clone(), function: self.function.clone(), _types: PhantomData }
    }
}

impl<In, Out> Udf<In, Out> {
    /// The module as the host resolved it: `TENANT/NAME@VERSION` (or its hash).
    pub fn module(&self) -> &str {
        &self.binding.module
    }

    /// The function's name.
    pub fn function(&self) -> &str {
        &self.function
    }

    fn call(&self, op: &str, at: &Location<'_>, func: crate::plan::FnRef) -> crate::plan::Call {
        let name = format!("{op}({} {})", self.binding.module, self.function);
        let arg = crate::dataset::encode_value(&(self.binding.slot, self.binding.function));
        crate::exec::call(crate::exec::label(&name, at), func, arg)
    }
}

impl Context {
    /// Bind function `function` of the UDF module `module` (`TENANT/NAME[@VERSION]`, e.g.
    /// `acme/geo@latest`, or a module hash), to be called with `In` and return `Out`.
    ///
    /// Fails, before any task runs, if the module does not exist or may not be used by this
    /// job's tenant, if it has no such function, or if the function's declared types are not
    /// `In` and `Out`; the message names the UDF and both signatures.
    pub fn udf<In: UdfType + Record, Out: UdfType + Record>(
        &self,
        module: &str,
        function: &str,
    ) -> Result<Udf<In, Out>> {
        let lookup = UdfLookup {
            module: module.to_string(),
            function: function.to_string(),
            input: In::data_type(),
            output: Out::data_type(),
        };
        let reply = crate::host::udf_bind(&rmp_serde::to_vec(&lookup)?)?;
        match rmp_serde::from_slice::<std::result::Result<UdfBinding, String>>(&reply)? {
            Ok(binding) => Ok(Udf { binding, function: function.to_string(), _types: PhantomData }),
            Err(message) => Err(Error::Udf(message)),
        }
    }
}

impl<T: Record> Dataset<T> {
    /// Apply the UDF to every record (in batches, in the UDF's own sandbox).
    #[track_caller]
    pub fn map_udf<U: Record + UdfType>(&self, udf: &Udf<T, U>) -> Dataset<U>
    where
        T: UdfType,
    {
        let func = crate::exec::fn_ref_op(crate::exec::udf_ops::map_udf::<T, U>);
        self.narrow(udf.call("map_udf", Location::caller(), func))
    }

    /// Keep the records for which the UDF returns `true`.
    #[track_caller]
    pub fn filter_udf(&self, udf: &Udf<T, bool>) -> Dataset<T>
    where
        T: UdfType,
    {
        let func = crate::exec::fn_ref_op(crate::exec::udf_ops::filter_udf::<T>);
        self.narrow_keeping(udf.call("filter_udf", Location::caller(), func), true)
    }

    /// Replace every record by the items of the list the UDF returns for it.
    #[track_caller]
    pub fn flat_map_udf<U: Record + UdfType>(&self, udf: &Udf<T, Vec<U>>) -> Dataset<U>
    where
        T: UdfType,
    {
        let func = crate::exec::fn_ref_op(crate::exec::udf_ops::flat_map_udf::<T, U>);
        self.narrow(udf.call("flat_map_udf", Location::caller(), func))
    }
}

/// Make this module a UDF module: the functions are compiled as they are written, and exported
/// by name, with their types, for jobs to call through [`Context::udf`].
///
/// ```ignore
/// weft::udf! {
///     /// The length of a line, in characters.
///     fn char_count(line: String) -> u64 { line.chars().count() as u64 }
///
///     /// Whether a status code is an error.
///     fn is_error(status: u16) -> bool { status >= 400 }
/// }
/// ```
///
/// Each function takes one argument (a tuple or a [`udf_type!`](crate::udf_type!) struct for
/// several values) and returns one value, all [`UdfType`]s. One `udf!` block per module. The
/// module is an ordinary `wasm32-wasip1` build with this SDK; it may have a job's `main` too.
#[macro_export]
macro_rules! udf {
    ($($(#[doc = $doc:literal])* fn $name:ident ($arg:ident : $in:ty) -> $out:ty $body:block)*) => {
        $($(#[doc = $doc])* fn $name($arg: $in) -> $out $body)*

        /// The signatures of this module's UDFs (the UDF ABI's `weft_udf_signatures`).
        #[unsafe(no_mangle)]
        pub extern "C" fn weft_udf_signatures() -> i64 {
            $crate::udf::support::signatures(vec![$($crate::udf::support::signature::<$in, $out>(
                stringify!($name),
                &[$($doc),*],
            )),*])
        }

        /// Run UDF number `function` over a batch (the UDF ABI's `weft_udf_call`).
        ///
        /// # Safety
        /// Called by the host only, with a buffer it allocated with `weft_alloc(len)` and filled.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn weft_udf_call(
            function: u32,
            format: u32,
            ptr: *mut u8,
            len: usize,
        ) -> i64 {
            let mut index = 0u32;
            $(
                if function == index {
                    // SAFETY: forwarded from the host's call.
                    return unsafe {
                        $crate::udf::support::call::<$in, $out>($name, format, ptr, len)
                    };
                }
                index += 1;
            )*
            $crate::udf::support::no_such_function(function, index)
        }
    };
}

/// What the [`udf!`](crate::udf!) macro expands to calls; not for direct use.
#[doc(hidden)]
pub mod support {
    use super::UdfType;
    use crate::Record;
    use std::cell::RefCell;
    use weft_abi::udf::{BATCH_MSGPACK, BATCH_PACKED, PACKED_FAILURE, UdfSignature, pack};

    thread_local! {
        /// The last answer, kept until the next call (the host copies it out before that).
        static ANSWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    /// Keep `bytes` as the answer and say where it is.
    fn answer(bytes: Vec<u8>) -> i64 {
        ANSWER.with(|slot| {
            let mut slot = slot.borrow_mut();
            *slot = bytes;
            pack(slot.as_ptr() as usize as u32, slot.len() as u32)
        })
    }

    /// Report `message` as the call's failure.
    fn failure(message: &str) -> i64 {
        #[cfg(target_arch = "wasm32")]
        crate::host::fail(message);
        #[cfg(not(target_arch = "wasm32"))]
        let _ = message;
        PACKED_FAILURE
    }

    /// One function's signature.
    pub fn signature<In: UdfType, Out: UdfType>(name: &str, doc: &[&str]) -> UdfSignature {
        let doc = doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        UdfSignature { name: name.into(), input: In::data_type(), output: Out::data_type(), doc }
    }

    /// The module's signatures, encoded, as `weft_udf_signatures` returns them.
    pub fn signatures(all: Vec<UdfSignature>) -> i64 {
        match rmp_serde::to_vec(&all) {
            Ok(bytes) => answer(bytes),
            Err(e) => failure(&format!("cannot encode the UDF signatures: {e}")),
        }
    }

    /// Run `f` over the batch the host put at `ptr`.
    ///
    /// # Safety
    /// `ptr` must come from `weft_alloc(len)`, filled by the host; the call takes it back.
    pub unsafe fn call<In: Record + UdfType, Out: Record + UdfType>(
        f: fn(In) -> Out,
        format: u32,
        ptr: *mut u8,
        len: usize,
    ) -> i64 {
        #[cfg(target_arch = "wasm32")]
        crate::exec::install_panic_hook();
        // SAFETY: the host allocated this buffer with `weft_alloc(len)` and filled it.
        let bytes = unsafe { Vec::from_raw_parts(ptr, len, len.max(1)) };
        if format != BATCH_MSGPACK && format != BATCH_PACKED {
            return failure(&format!("batch format {format} is not supported by this module"));
        }
        let input: Vec<In> = match super::decode_side(&bytes, format) {
            Ok(records) => records,
            Err(e) => return failure(&format!("cannot decode the UDF's input batch: {e}")),
        };
        drop(bytes);
        let mut out = ANSWER.with(|slot| std::mem::take(&mut *slot.borrow_mut()));
        out.clear();
        match super::encode_side(input.into_iter().map(f), format, &mut out) {
            Ok(()) => answer(out),
            Err(e) => failure(&format!("cannot encode the UDF's output batch: {e}")),
        }
    }

    /// The answer for a function number the module does not have.
    pub fn no_such_function(function: u32, count: u32) -> i64 {
        failure(&format!("this module has {count} UDFs, not a number {function}"))
    }
}
