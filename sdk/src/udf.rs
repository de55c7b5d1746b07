//! UDFs: functions of another module, called by name (see [`Context::udf`] and the
//! [`udf!`](crate::udf!) macro that makes such a module).
//!
//! A UDF module is built with this SDK and pushed to the registry once; jobs of any tenant that
//! may see it call its functions without linking its code. The host runs it in a sandbox of its
//! own next to the calling task, and calls it once per batch of records (a few thousand), so the
//! cost per record is encoding it and decoding the answer, never a call across sandboxes.
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
pub trait UdfType {
    /// The type's description.
    fn data_type() -> DataType;
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

primitive!(
    () => Null, bool => Boolean, i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64,
    u8 => UInt8, u16 => UInt16, u32 => UInt32, u64 => UInt64, f32 => Float32, f64 => Float64,
    String => Utf8,
);

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
    pub fn map_udf<U: Record>(&self, udf: &Udf<T, U>) -> Dataset<U> {
        let func = crate::exec::fn_ref_op(crate::exec::udf_ops::map_udf::<T, U>);
        self.narrow(udf.call("map_udf", Location::caller(), func))
    }

    /// Keep the records for which the UDF returns `true`.
    #[track_caller]
    pub fn filter_udf(&self, udf: &Udf<T, bool>) -> Dataset<T> {
        let func = crate::exec::fn_ref_op(crate::exec::udf_ops::filter_udf::<T>);
        self.narrow_keeping(udf.call("filter_udf", Location::caller(), func), true)
    }

    /// Replace every record by the items of the list the UDF returns for it.
    #[track_caller]
    pub fn flat_map_udf<U: Record>(&self, udf: &Udf<T, Vec<U>>) -> Dataset<U> {
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
    use weft_abi::udf::{BATCH_MSGPACK, PACKED_FAILURE, UdfSignature, pack};

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
    pub unsafe fn call<In: Record, Out: Record>(
        f: fn(In) -> Out,
        format: u32,
        ptr: *mut u8,
        len: usize,
    ) -> i64 {
        #[cfg(target_arch = "wasm32")]
        crate::exec::install_panic_hook();
        // SAFETY: the host allocated this buffer with `weft_alloc(len)` and filled it.
        let bytes = unsafe { Vec::from_raw_parts(ptr, len, len.max(1)) };
        if format != BATCH_MSGPACK {
            return failure(&format!("batch format {format} is not supported by this module"));
        }
        let input: Vec<In> = match rmp_serde::from_slice(&bytes) {
            Ok(records) => records,
            Err(e) => return failure(&format!("cannot decode the UDF's input batch: {e}")),
        };
        drop(bytes);
        let mut out = ANSWER.with(|slot| std::mem::take(&mut *slot.borrow_mut()));
        out.clear();
        let mut encoder = rmp_serde::Serializer::new(&mut out);
        match serde::Serializer::collect_seq(&mut encoder, input.into_iter().map(f)) {
            Ok(()) => answer(out),
            Err(e) => failure(&format!("cannot encode the UDF's output batch: {e}")),
        }
    }

    /// The answer for a function number the module does not have.
    pub fn no_such_function(function: u32, count: u32) -> i64 {
        failure(&format!("this module has {count} UDFs, not a number {function}"))
    }
}
