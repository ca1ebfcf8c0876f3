//! The body of an incoming request as a guest sees it: at most the component's
//! `maxRequestBody` bytes, and the guest never waits longer than the idle timeout for the
//! client's next bytes. Either breach ends the guest's body stream with an error instead of
//! holding an instance (and its memory) hostage. Time the guest spends elsewhere between reads
//! does not count against the client. The body ends with its request: a guest that keeps the
//! stream (in a pooled or shared instance) reads an error afterwards, never another request's
//! bytes, and the client's connection is not held.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::Error;

pub(crate) struct GuardedBody {
    /// `None` once the request is over.
    inner: Option<Incoming>,
    /// Resolves (its sender dropped) when the call serving the request ends.
    over: oneshot::Receiver<()>,
    remaining: u64,
    limit: u64,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    /// Whether the guest is waiting for the client now (the idle timer runs only then).
    waiting: bool,
}

impl GuardedBody {
    pub(crate) fn new(
        inner: Incoming,
        limit: u64,
        idle_timeout: Duration,
        over: oneshot::Receiver<()>,
    ) -> Self {
        Self {
            inner: Some(inner),
            over,
            remaining: limit,
            limit,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            waiting: false,
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(Some(Err(Error::ConnectionTerminated)));
        };
        if Pin::new(&mut this.over).poll(cx).is_ready() {
            this.inner = None;
            return Poll::Ready(Some(Err(Error::ConnectionTerminated)));
        }
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.waiting = false;
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.remaining = 0;
                        return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(
                            this.limit,
                        )))));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Error::from(err)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    let deadline = Instant::now() + this.idle_timeout;
                    this.idle.as_mut().reset(deadline);
                }
                ready!(this.idle.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_some_and(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(SizeHint::default, Body::size_hint)
    }
}
