//! Guest stdout/stderr: captured with a size cap, optionally forwarded live.
//!
//! A guest that prints without end must not exhaust the host's memory, and must not fail either
//! (Rust's `println!` panics when a write fails): past the cap, bytes are accepted, counted and
//! dropped. The driver's stdout is forwarded live to a writer (the terminal, under `weft run`);
//! task output is only kept, for the job log.

use bytes::Bytes;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

struct State {
    kept: Vec<u8>,
    cap: usize,
    dropped: u64,
    forward: Option<Box<dyn Write + Send>>,
}

/// A capped, shareable output stream for a sandbox's stdout or stderr.
#[derive(Clone)]
pub struct CapturedOutput {
    state: Arc<Mutex<State>>,
}

impl CapturedOutput {
    /// Keep at most `cap` bytes.
    pub fn buffer(cap: usize) -> Self {
        Self::new(cap, None)
    }

    /// Forward everything to `writer` as it is written, keeping at most `cap` bytes as well.
    pub fn forward(cap: usize, writer: Box<dyn Write + Send>) -> Self {
        Self::new(cap, Some(writer))
    }

    fn new(cap: usize, forward: Option<Box<dyn Write + Send>>) -> Self {
        let state = State { kept: Vec::new(), cap, dropped: 0, forward };
        CapturedOutput { state: Arc::new(Mutex::new(state)) }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = s.forward.as_mut() {
            // A closed terminal must not fail the job; the kept copy still records the output.
            let _ = w.write_all(bytes);
        }
        let room = s.cap.saturating_sub(s.kept.len());
        let keep = room.min(bytes.len());
        s.kept.extend_from_slice(&bytes[..keep]);
        s.dropped += (bytes.len() - keep) as u64;
    }

    fn flush_forward(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = s.forward.as_mut() {
            let _ = w.flush();
        }
    }

    /// The kept bytes and the number of bytes dropped past the cap.
    pub fn contents(&self) -> (Vec<u8>, u64) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (s.kept.clone(), s.dropped)
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.flush_forward();
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush_forward();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_cap_and_counts_the_rest() {
        let out = CapturedOutput::buffer(5);
        out.write_bytes(b"abc");
        out.write_bytes(b"defgh");
        assert_eq!(out.contents(), (b"abcde".to_vec(), 3));
    }
}
