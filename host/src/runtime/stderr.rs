//! The guest's stderr, captured for the host's log: a panic message lands here. Bounded
//! per call, and writing never fails the guest (what is over the cap is counted, dropped).

use std::sync::{Arc, Mutex, PoisonError};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::limits::MAX_LOG_BYTES_PER_CALL;

#[derive(Debug, Clone, Default)]
pub(super) struct CapturedStderr(Arc<Mutex<Captured>>);

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    dropped_bytes: usize,
}

impl CapturedStderr {
    /// What the guest wrote since the last call, and how many bytes were over the cap.
    pub fn take(&self) -> (String, usize) {
        let mut captured = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let text = String::from_utf8_lossy(&captured.bytes).into_owned();
        captured.bytes.clear();
        (text, std::mem::take(&mut captured.dropped_bytes))
    }
}

impl IsTerminal for CapturedStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASIp3 asks for this, and this host links WASIp2 alone.
        Box::new(tokio::io::sink())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedStderr {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturedStderr {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        let mut captured = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let room = MAX_LOG_BYTES_PER_CALL.saturating_sub(captured.bytes.len());
        let kept = bytes.len().min(room);
        captured.bytes.extend_from_slice(&bytes[..kept]);
        captured.dropped_bytes += bytes.len() - kept;
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LOG_BYTES_PER_CALL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_over_the_cap_is_counted_not_kept() {
        let mut stderr = CapturedStderr::default();
        stderr.write(bytes::Bytes::from(vec![b'x'; MAX_LOG_BYTES_PER_CALL + 10])).unwrap();
        let (text, dropped) = stderr.take();
        assert_eq!((text.len(), dropped), (MAX_LOG_BYTES_PER_CALL, 10));
        assert_eq!(stderr.take(), (String::new(), 0), "each call starts empty");
    }
}
