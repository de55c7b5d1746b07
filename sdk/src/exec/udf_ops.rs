//! The calling side of UDFs: operators that cut their input into batches, hand each batch to the
//! host for the UDF's sandbox, and stream the answers on.
//!
//! A batch is at most [`BATCH_RECORDS`] records or about [`BATCH_BYTES`] encoded: large enough
//! that the call across sandboxes (a host call, two copies) is lost in the per-record work,
//! small enough that a batch never holds much memory on either side.

use super::{Erased, Iter, decode_arg, set_error, set_op};
use crate::{Error, Record, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Most records in one UDF call.
pub(crate) const BATCH_RECORDS: usize = 4096;
/// Encoded bytes after which a batch is sent even if it has fewer records.
pub(crate) const BATCH_BYTES: usize = 1 << 20;

/// One bound UDF as a task calls it.
struct Target {
    slot: u32,
    function: u32,
    op: u32,
}

impl Target {
    fn decode(arg: &[u8], op: u32) -> Result<Target> {
        let (slot, function): (u32, u32) = decode_arg(arg, "a UDF call")?;
        Ok(Target { slot, function, op })
    }

    /// Send `encoded` (an array of `count` records) and decode the answer, one per record.
    fn call<R: DeserializeOwned>(&self, encoded: &[u8], count: usize) -> Result<Vec<R>> {
        set_op(self.op);
        let answer = crate::host::udf_call(self.slot, self.function, encoded);
        let out: Vec<R> = rmp_serde::from_slice(&answer)
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

/// Cut `input` into batches: the records of each, and their encoding as one MessagePack array.
struct Batcher<T> {
    input: Iter<T>,
    encoded: Vec<u8>,
}

impl<T: Serialize> Batcher<T> {
    /// The next batch; empty at the end of the input (or after an error, which is parked).
    fn next_batch(&mut self) -> Vec<T> {
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

impl<T: Serialize, U, A: DeserializeOwned> Iterator for Answers<T, U, A> {
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

fn answers<T: Record, U: 'static, A: DeserializeOwned + 'static>(
    input: Erased,
    arg: &[u8],
    op: u32,
    take: fn(Vec<T>, Vec<A>) -> Vec<U>,
) -> Result<Erased> {
    let target = Target::decode(arg, op)?;
    let batcher = Batcher { input: input.into_iter::<T>()?, encoded: Vec::new() };
    let it: Iter<U> = Box::new(Answers { batcher, target, take, ready: Vec::new().into_iter() });
    Ok(Erased::new(it))
}

/// `map_udf`: the UDF's answer for every record.
pub(crate) fn map_udf<T: Record, U: Record>(input: Erased, arg: &[u8], op: u32) -> Result<Erased> {
    answers::<T, U, U>(input, arg, op, |_, answers| answers)
}

/// `filter_udf`: the records the UDF answers `true` for.
pub(crate) fn filter_udf<T: Record>(input: Erased, arg: &[u8], op: u32) -> Result<Erased> {
    answers::<T, T, bool>(input, arg, op, |records, keep| {
        records.into_iter().zip(keep).filter_map(|(r, k)| k.then_some(r)).collect()
    })
}

/// `flat_map_udf`: every item of the UDF's answer for every record.
pub(crate) fn flat_map_udf<T: Record, U: Record>(
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
        let mut b = Batcher { input, encoded: Vec::new() };
        let first = b.next_batch();
        assert_eq!(first.len(), BATCH_RECORDS);
        assert_eq!(rmp_serde::from_slice::<Vec<String>>(&b.encoded).unwrap(), first);
        assert_eq!(b.next_batch().len(), BATCH_RECORDS);
        assert_eq!(b.next_batch().len(), 10_000 - 2 * BATCH_RECORDS);
        assert!(b.next_batch().is_empty());
        let big: Iter<String> = Box::new((0..10).map(|_| "x".repeat(BATCH_BYTES / 3)));
        let mut b = Batcher { input: big, encoded: Vec::new() };
        assert_eq!(b.next_batch().len(), 3);
    }
}
