//! A WASI 0.3 HTTP component that streams: `GET /?chunks=N&ms=M` answers N lines (`chunk 1`,
//! `chunk 2`, ...), waiting M milliseconds before each, written after `handle` has returned the
//! response head; `POST /echo` streams the request body back as it arrives.

use wasip3::clocks::monotonic_clock;
use wasip3::exports::http::handler::Guest;
use wasip3::http::types::{ErrorCode, Method, Request, Response};
use wasip3::wit_bindgen::StreamResult;
use wasip3::wit_future;
use weft_guest_p3::{param, respond_with};

struct Stream;

impl Guest for Stream {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        if matches!(request.get_method(), Method::Post) {
            return echo(request);
        }
        let chunks: u32 = param(&request, "chunks")
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        let ms: u64 = param(&request, "ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        respond_with(200, "text/plain", move |mut tx| async move {
            for i in 1..=chunks {
                monotonic_clock::wait_for(ms * 1_000_000).await;
                if !tx.write_all(format!("chunk {i}\n").into_bytes()).await.is_empty() {
                    return; // the client went away
                }
            }
        })
    }
}

/// Copies the request body into the response body, chunk by chunk.
fn echo(request: Request) -> Result<Response, ErrorCode> {
    let (_, result_rx) = wit_future::new(|| Ok(()));
    let (mut body, _trailers) = Request::consume_body(request, result_rx);
    respond_with(200, "application/octet-stream", move |mut tx| async move {
        loop {
            let (status, chunk) = body.read(Vec::with_capacity(16 * 1024)).await;
            if !chunk.is_empty() && !tx.write_all(chunk).await.is_empty() {
                return;
            }
            if !matches!(status, StreamResult::Complete(_)) {
                return;
            }
        }
    })
}

wasip3::http::service::export!(Stream);
