//! The calling side of UDFs: operators that cut their input into batches, hand each batch to the
//! host for the UDF's sandbox, and stream the answers on.
//!
//! A batch is at most [`BATCH_RECORDS`] records or about [`BATCH_BYTES`] encoded: large enough
//! that the call across sandboxes (a host call, two copies) is lost in the per-record work,
//! small enough that a batch never holds much memory on either side. Fixed-width primitives
//! cross packed ([`weft_abi::udf::BATCH_PACKED`]): no per-record encoding at all, which is most
//! of what a call to a cheap function costs otherwise.

use super::{Erased, Iter, decode_arg, set_error, set_op};
use crate::udf::{UdfType, batch_format, decode_side};
use crate::{Error, Record, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_abi::udf::BATCH_PACKED;

/// Most records in one UDF call.
pub(crate) const BATCH_RECORDS: usize = 4096;
/// Encoded bytes after which a batch is sent even if it has fewer records.
pub(crate) const BATCH_BYTES: usize = 1 << 20;

/// One bound UDF as a task calls it.
struct Target {
    slot: u32,
    function: u32,
    /// The batch format of every call.
    format: u32,
    op: u32,
}

impl Target {
    fn decode(arg: &[u8], op: u32, format: u32) -> Result<Target> {
        let (slot, function): (u32, u32) = decode_arg(arg, "a UDF call")?;
        Ok(Target { slot, function, format, op })
    }

    /// Send `encoded` (`count` records) and decode the answer, one per record.
    fn call<R: DeserializeOwned + UdfType>(&self, encoded: &[u8], count: usize) -> Result<Vec<R>> {
        set_op(self.op);
        let answer = crate::host::udf_call(self.slot, self.function, self.format, encoded);
        let out: Vec<R> = decode_side(&answer, self.format)
            .map_err(|e| Error::Codec(format!("cannot decode what the UDF returned: {e}")))?;
        if out.len() != count {
            return Err(Error::Codec(format!(
                "the UDF returned {} records for a batch of {count}",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// Cut `input` into batches: the records of each, and their encoding in the batch format, packed
/// values or one MessagePack array.
struct Batcher<T> {
    input: Iter<T>,
    encoded: Vec<u8>,
    packed: bool,
}

impl<T: Serialize + UdfType> Batcher<T> {
    fn new(input: Iter<T>, format: u32) -> Batcher<T> {
        let packed = format == BATCH_PACKED && T::PACKED_WIDTH > 0;
        Batcher { input, encoded: Vec::new(), packed }
    }

    /// The next batch; empty at the end of the input (or after an error, which is parked).
    fn next_batch(&mut self) -> Vec<T> {
        if self.packed {
            self.encoded.clear();
            let records: Vec<T> = self.input.by_ref().take(BATCH_RECORDS).collect();
            records.iter().for_each(|r| r.write_packed(&mut self.encoded));
            return records;
        }
        let mut records = Vec::new();
        let mut body = Vec::new();
        for record in self.input.by_ref() {
            if let Err(e) = rmp_serde::encode::write(&mut body, &record) {
                set_error(Error::Codec(format!("cannot encode a record for the UDF: {e}")));
                return Vec::new();
            }
            records.push(record);
            if records.len() >= BATCH_RECORDS || body.len() >= BATCH_BYTES {
                break;
            }
        }
        self.encoded.clear();
        write_array_len(&mut self.encoded, records.len());
        self.encoded.extend_from_slice(&body);
        records
    }
}

/// A MessagePack array header for `len` elements.
fn write_array_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=15 => out.push(0x90 | len as u8),
        16..=0xffff => {
            out.push(0xdc);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdd);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

/// Records of every batch's answer, flattened by `take`.
struct Answers<T, U, A> {
    batcher: Batcher<T>,
    target: Target,
    /// Turns a batch and its answers into output records.
    take: fn(Vec<T>, Vec<A>) -> Vec<U>,
    ready: std::vec::IntoIter<U>,
}

impl<T: Serialize + UdfType, U, A: DeserializeOwned + UdfType> Iterator for Answers<T, U, A> {
    type Item = U;

    fn next(&mut self) -> Option<U> {
        loop {
            if let Some(x) = self.ready.next() {
                return Some(x);
            }
            let records = self.batcher.next_batch();
            if records.is_empty() {
                return None;
            }
            match self.target.call::<A>(&self.batcher.encoded, records.len()) {
                Ok(answers) => self.ready = (self.take)(records, answers).into_iter(),
                Err(e) => {
                    set_error(e);
                    return None;
                }
            }
        }
    }
}

fn answers<T: Record + UdfType, U: 'static, A: DeserializeOwned + UdfType + 'static>(
    input: Erased,
    arg: &[u8],
    op: u32,
    take: fn(Vec<T>, Vec<A>) -> Vec<U>,
) -> Result<Erased> {
    let format = batch_format::<T, A>();
    let target = Target::decode(arg, op, format)?;
    let batcher = Batcher::new(input.into_iter::<T>()?, format);
    let it: Iter<U> = Box::new(Answers { batcher, target, take, ready: Vec::new().into_iter() });
    Ok(Erased::new(it))
}

/// `map_udf`: the UDF's answer for every record.
pub(crate) fn map_udf<T: Record + UdfType, U: Record + UdfType>(
    input: Erased,
    arg: &[u8],
    op: u32,
) -> Result<Erased> {
    answers::<T, U, U>(input, arg, op, |_, answers| answers)
}

/// `filter_udf`: the records the UDF answers `true` for.
pub(crate) fn filter_udf<T: Record + UdfType>(
    input: Erased,
    arg: &[u8],
    op: u32,
) -> Result<Erased> {
    answers::<T, T, bool>(input, arg, op, |records, keep| {
        records.into_iter().zip(keep).filter_map(|(r, k)| k.then_some(r)).collect()
    })
}

/// `flat_map_udf`: every item of the UDF's answer for every record.
pub(crate) fn flat_map_udf<T: Record + UdfType, U: Record + UdfType>(
    input: Erased,
    arg: &[u8],
    op: u32,
) -> Result<Erased> {
    answers::<T, U, Vec<U>>(input, arg, op, |_, lists| lists.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_headers_decode_as_arrays_of_the_records() {
        for n in [0usize, 1, 15, 16, 4096, 70_000] {
            let records: Vec<u32> = (0..n as u32).collect();
            let mut encoded = Vec::new();
            write_array_len(&mut encoded, n);
            for r in &records {
                rmp_serde::encode::write(&mut encoded, r).unwrap();
            }
            assert_eq!(rmp_serde::from_slice::<Vec<u32>>(&encoded).unwrap(), records, "{n}");
        }
    }

    #[test]
    fn batches_are_cut_by_count_and_by_size() {
        let input: Iter<String> = Box::new((0..10_000).map(|i| i.to_string()));
        let mut b = Batcher::new(input, BATCH_PACKED);
        let first = b.next_batch();
        assert_eq!(first.len(), BATCH_RECORDS);
        assert_eq!(rmp_serde::from_slice::<Vec<String>>(&b.encoded).unwrap(), first);
        assert_eq!(b.next_batch().len(), BATCH_RECORDS);
        assert_eq!(b.next_batch().len(), 10_000 - 2 * BATCH_RECORDS);
        assert!(b.next_batch().is_empty());
        let big: Iter<String> = Box::new((0..10).map(|_| "x".repeat(BATCH_BYTES / 3)));
        let mut b = Batcher::new(big, weft_abi::udf::BATCH_MSGPACK);
        assert_eq!(b.next_batch().len(), 3);
    }

    #[test]
    fn fixed_width_records_cross_packed_and_decode_back() {
        let input: Iter<u64> = Box::new(0..10_000u64);
        let mut b = Batcher::new(input, BATCH_PACKED);
        let first = b.next_batch();
        assert_eq!(first.len(), BATCH_RECORDS);
        assert_eq!(b.encoded.len(), BATCH_RECORDS * 8, "8 bytes a value, no header");
        assert_eq!(&b.encoded[8..16], &1u64.to_le_bytes());
        assert_eq!(decode_side::<u64>(&b.encoded, BATCH_PACKED).unwrap(), first);
        // Under the MessagePack format the same records are an array.
        let input: Iter<u64> = Box::new(0..10u64);
        let mut b = Batcher::new(input, weft_abi::udf::BATCH_MSGPACK);
        let all = b.next_batch();
        assert_eq!(rmp_serde::from_slice::<Vec<u64>>(&b.encoded).unwrap(), all);
    }

    #[test]
    fn packed_sides_round_trip_for_every_fixed_width_type() {
        fn round_trip<
            T: UdfType + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + Clone,
        >(
            values: Vec<T>,
        ) {
            let width = T::data_type().fixed_width().expect("a fixed-width type");
            assert_eq!(T::PACKED_WIDTH, width, "{}", T::data_type());
            let mut out = Vec::new();
            crate::udf::encode_side(values.clone().into_iter(), BATCH_PACKED, &mut out).unwrap();
            assert_eq!(out.len(), values.len() * width);
            assert_eq!(decode_side::<T>(&out, BATCH_PACKED).unwrap(), values);
        }
        round_trip(vec![true, false, true]);
        round_trip(vec![i8::MIN, -1, i8::MAX]);
        round_trip(vec![i16::MIN, 7, i16::MAX]);
        round_trip(vec![i32::MIN, 7, i32::MAX]);
        round_trip(vec![i64::MIN, 7, i64::MAX]);
        round_trip(vec![0u8, 200, u8::MAX]);
        round_trip(vec![0u16, 7, u16::MAX]);
        round_trip(vec![0u32, 7, u32::MAX]);
        round_trip(vec![0u64, 7, u64::MAX]);
        round_trip(vec![-1.5f32, f32::MAX]);
        round_trip(vec![-1.5f64, f64::MIN_POSITIVE]);
        // The other types have no packed form and cross as MessagePack under either format.
        for t in [String::data_type(), <Option<u64>>::data_type(), <(u64, u64)>::data_type()] {
            assert_eq!(t.fixed_width(), None, "{t}");
        }
        assert_eq!(<String as UdfType>::PACKED_WIDTH, 0);
        let mut out = Vec::new();
        crate::udf::encode_side(vec!["a".to_string()].into_iter(), BATCH_PACKED, &mut out).unwrap();
        assert_eq!(decode_side::<String>(&out, BATCH_PACKED).unwrap(), ["a"]);
    }

    #[test]
    fn a_ragged_packed_batch_is_an_error_naming_the_width() {
        let err = decode_side::<u32>(&[0u8; 7], BATCH_PACKED).unwrap_err();
        assert!(err.contains("7 bytes") && err.contains("4-byte"), "{err}");
    }

    #[test]
    fn a_batch_is_packed_when_either_side_can_be() {
        use crate::udf::batch_format;
        use weft_abi::udf::BATCH_MSGPACK;
        assert_eq!(batch_format::<u64, u64>(), BATCH_PACKED);
        assert_eq!(batch_format::<String, bool>(), BATCH_PACKED);
        assert_eq!(batch_format::<u32, String>(), BATCH_PACKED);
        assert_eq!(batch_format::<String, Vec<String>>(), BATCH_MSGPACK);
    }
}
