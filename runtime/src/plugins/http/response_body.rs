//! The body of a WASI 0.3 response as the client gets it. The guest writes it after `handle`
//! has returned: this body says when it ends (on its end, an error, or the client going away),
//! ending the request's own body with it, and cuts it at the call's deadline, as a 0.2 body
//! written past the deadline is cut with its instance.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::time::Sleep;
use wasmtime_wasi_http::{Error, WasiBody};

pub(crate) struct ResponseBody {
    inner: Option<WasiBody>,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Dropped when the body ends, or with the body: the first says so to whoever waits for
    /// it, the second ends the request's own body.
    _done: Option<(oneshot::Sender<()>, oneshot::Sender<()>)>,
}

impl ResponseBody {
    /// `done`'s receivers resolve once the body has ended or been dropped.
    pub(crate) fn new(
        inner: WasiBody,
        deadline: Option<Instant>,
        done: (oneshot::Sender<()>, oneshot::Sender<()>),
    ) -> Self {
        Self {
            inner: Some(inner),
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            _done: Some(done),
        }
    }

    fn end(&mut self) {
        self.inner = None;
        self._done = None;
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.end();
            return Poll::Ready(Some(Err(Error::HttpResponseTimeout)));
        }
        let frame = Pin::new(inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            this.end();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
