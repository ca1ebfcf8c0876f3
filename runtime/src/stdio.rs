//! Guest stdout and stderr, line by line, into the host's structured logs with the workload and
//! component that wrote them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::store::Identity;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// A `wasi:cli/stdout` (or stderr) that logs each line through `tracing`.
pub(crate) struct LogStream {
    identity: Identity,
    stream: Stream,
}

impl LogStream {
    pub(crate) fn new(identity: Identity, stream: Stream) -> Self {
        Self { identity, stream }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            identity: self.identity.clone(),
            stream: self.stream,
            buf: Vec::new(),
        })
    }
}

/// The most a guest can hold back in one unterminated line before it is logged anyway.
const MAX_LINE: usize = 16 * 1024;

struct LineWriter {
    identity: Identity,
    stream: Stream,
    buf: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        let (workload, component) = (&self.identity.workload, &self.identity.component);
        match self.stream {
            Stream::Stdout => {
                tracing::info!(target: crate::GUEST_LOG, %workload, %component, stream = "stdout", "{line}")
            }
            Stream::Stderr => {
                tracing::warn!(target: crate::GUEST_LOG, %workload, %component, stream = "stderr", "{line}")
            }
        }
    }

    fn flush_lines(&mut self, all: bool) {
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            self.emit(&line);
        }
        if (all && !self.buf.is_empty()) || self.buf.len() >= MAX_LINE {
            let rest = std::mem::take(&mut self.buf);
            self.emit(&rest);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.buf.extend_from_slice(data);
        self.flush_lines(false);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush_lines(true);
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.flush_lines(true);
    }
}
