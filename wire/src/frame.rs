//! Length-prefixed frames: a 4-byte big-endian length, then that many bytes of MessagePack.
//!
//! [`FrameDecoder`] is sans-I/O: push whatever bytes arrived, pop complete frames. A frame that
//! announces more than the decoder's limit is refused *before* anything is buffered for it, so a
//! peer cannot make us allocate by lying about a length.

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// Default largest frame: 64 MiB (module uploads are chunked below it).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// A framing or decoding failure. Any of them ends the connection that caused it.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum FrameError {
    /// The length prefix exceeds the limit.
    #[error("frame of {len} bytes exceeds the {max} byte limit")]
    Oversized {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({buffered} bytes of an unfinished frame)")]
    Truncated {
        /// Bytes received of the unfinished frame.
        buffered: usize,
    },
    /// The frame is not a valid message of the expected type.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Encode `message` as one frame.
pub fn encode<T: Serialize>(message: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let body =
        rmp_serde::to_vec_named(message).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if body.len() > max {
        return Err(FrameError::Oversized { len: body.len(), max });
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decode a frame body as a `T`.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    rmp_serde::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Reassembles frames from arbitrary pieces of a byte stream.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames over `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder { buf: Vec::new(), start: 0, max }
    }

    /// Add received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > (1 << 20) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's body, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let pending = &self.buf[self.start..];
        let Some(prefix) = pending.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
        if len > self.max {
            return Err(FrameError::Oversized { len, max: self.max });
        }
        let Some(body) = pending.get(4..4 + len) else {
            return Ok(None);
        };
        let body = body.to_vec();
        self.start += 4 + len;
        Ok(Some(body))
    }

    /// The stream ended: fine only if no frame is half-received.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buf.len() - self.start {
            0 => Ok(()),
            buffered => Err(FrameError::Truncated { buffered }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_fragmentation() {
        let messages: Vec<Vec<String>> = (0..20).map(|i| vec!["x".repeat(i * 37); i]).collect();
        let mut wire = Vec::new();
        for m in &messages {
            wire.extend(encode(m, DEFAULT_MAX_FRAME).unwrap());
        }
        for piece in [1, 3, 64, 4096, wire.len()] {
            let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
            let mut got = Vec::new();
            for chunk in wire.chunks(piece) {
                decoder.push(chunk);
                while let Some(body) = decoder.next_frame().unwrap() {
                    got.push(decode::<Vec<String>>(&body).unwrap());
                }
            }
            decoder.finish().unwrap();
            assert_eq!(got, messages, "pieces of {piece}");
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_buffering() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.push(&(1_000_000u32).to_be_bytes());
        assert_eq!(decoder.next_frame(), Err(FrameError::Oversized { len: 1_000_000, max: 1024 }));
        assert!(matches!(encode(&vec![0u8; 2048], 1024), Err(FrameError::Oversized { .. })));
    }

    #[test]
    fn truncated_and_garbage_input_are_errors() {
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let frame = encode(&"hello", DEFAULT_MAX_FRAME).unwrap();
        decoder.push(&frame[..frame.len() - 1]);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.finish(), Err(FrameError::Truncated { buffered: frame.len() - 1 }));

        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        decoder.push(&[0, 0, 0, 3, 0xc1, 0xc1, 0xc1]);
        let body = decoder.next_frame().unwrap().unwrap();
        assert!(matches!(decode::<String>(&body), Err(FrameError::Malformed(_))));
    }
}
