//! What a record is, and how shippable functions are recognised.
//!
//! Records are plain serde types: they cross the host/guest boundary and the network as
//! MessagePack. Closures are shipped as *code*, not data: a closure that captures nothing is a
//! zero-sized type, so the module can re-create it on any node from its type alone. A closure that
//! captures something is not zero-sized, and [`assert_shippable!`] turns that into a compile error
//! that points the user to the `*_with` variants, which ship the captured value explicitly.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::Hash;

/// A value that can be a record of a [`Dataset`](crate::Dataset): anything serde can encode.
pub trait Record: Serialize + DeserializeOwned + 'static {}
impl<T: Serialize + DeserializeOwned + 'static> Record for T {}

/// A record usable as a key of a pair dataset (grouping, shuffling).
pub trait Key: Record + Hash + Eq {}
impl<T: Record + Hash + Eq> Key for T {}

/// Fail compilation if closure type `$f` captures anything.
///
/// Capturing closures cannot be shipped to other sandboxes as code. The check is a constant
/// evaluated when the generic function is instantiated, so the error appears at `cargo build`.
macro_rules! assert_shippable {
    ($f:ty) => {
        const {
            assert!(
                ::std::mem::size_of::<$f>() == 0,
                "weft: this closure captures variables from its environment, so it cannot be \
                 shipped to other sandboxes. Pass the values explicitly with `map_with`, \
                 `filter_with` or `flat_map_with` (e.g. `ds.map_with(n, |n, x| x + *n)`)."
            )
        }
    };
}
pub(crate) use assert_shippable;

/// Re-create a closure value from its type alone.
///
/// # Safety
/// `F` must be zero-sized (checked) and be a closure or function item type, which carries no
/// state and so has no invalid values.
pub(crate) unsafe fn conjure<F>() -> F {
    assert_eq!(std::mem::size_of::<F>(), 0, "only zero-sized closures can be re-created");
    // SAFETY: reading a zero-sized value reads no memory; the caller guarantees `F` is stateless.
    unsafe { std::ptr::NonNull::<F>::dangling().as_ptr().read() }
}
