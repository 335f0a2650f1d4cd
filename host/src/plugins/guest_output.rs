//! A plugin's WASI stdout and stderr, written line by line to the host's log.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::state::PluginIdentity;

/// Longest line kept; longer output is logged in pieces of this size, so a plugin printing
/// without newlines cannot grow the host's buffer.
const MAX_LINE_BYTES: usize = 4096;

/// Where one of a plugin's output streams goes.
pub(crate) struct GuestOutput {
    sink: Arc<Mutex<LineSink>>,
}

/// Lines of stderr kept for the next fault report: a panicking guest prints its message
/// there just before it traps, and that message is what the operator needs to see.
const RECENT_STDERR_LINES: usize = 4;

impl GuestOutput {
    pub(crate) fn new(identity: Arc<PluginIdentity>, stream: &'static str) -> Self {
        Self {
            sink: Arc::new(Mutex::new(LineSink {
                identity,
                stream,
                line: Vec::new(),
                recent: Vec::new(),
            })),
        }
    }

    /// A handle on the recent lines of this stream, for fault reports.
    pub(crate) fn recent(&self) -> RecentLines {
        RecentLines(self.sink.clone())
    }
}

/// The last few lines a plugin wrote to a stream.
#[derive(Clone)]
pub(crate) struct RecentLines(Arc<Mutex<LineSink>>);

impl RecentLines {
    /// Forgets what was written so far.
    pub(crate) fn clear(&self) {
        lock(&self.0).recent.clear();
    }

    /// The recent lines joined with ` / `, or `None` when there are none.
    pub(crate) fn take(&self) -> Option<String> {
        let mut sink = lock(&self.0);
        if !sink.line.is_empty() {
            sink.emit();
        }
        let lines = std::mem::take(&mut sink.recent);
        (!lines.is_empty()).then(|| lines.join(" / "))
    }
}

struct LineSink {
    identity: Arc<PluginIdentity>,
    stream: &'static str,
    line: Vec<u8>,
    recent: Vec<String>,
}

impl LineSink {
    fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = MAX_LINE_BYTES - self.line.len();
            match bytes.iter().take(room).position(|&b| b == b'\n') {
                Some(end) => {
                    self.line.extend_from_slice(&bytes[..end]);
                    self.emit();
                    bytes = &bytes[end + 1..];
                }
                None => {
                    let take = room.min(bytes.len());
                    self.line.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.line.len() == MAX_LINE_BYTES {
                        self.emit();
                    }
                }
            }
        }
    }

    fn emit(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches('\r');
        // Rust's panic hook ends with a hint about RUST_BACKTRACE, which a plugin cannot use.
        let noise = text.trim().is_empty() || text.starts_with("note: run with `RUST_BACKTRACE");
        if !noise {
            tracing::info!(plugin = %self.identity.name, version = %self.identity.version, stream = self.stream, "{text}");
            if self.recent.len() == RECENT_STDERR_LINES {
                self.recent.remove(0);
            }
            self.recent.push(text.trim().to_owned());
        }
        self.line.clear();
    }
}

impl Drop for LineSink {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}

fn lock(sink: &Mutex<LineSink>) -> std::sync::MutexGuard<'_, LineSink> {
    sink.lock().unwrap_or_else(|p| p.into_inner())
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(GuestOutputWriter(self.sink.clone()))
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(GuestOutputWriter(self.sink.clone()))
    }
}

/// One open handle on a plugin's output stream; all handles share the line buffer.
struct GuestOutputWriter(Arc<Mutex<LineSink>>);

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutputWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        lock(&self.0).write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutputWriter {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutputWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        lock(&self.0).write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
