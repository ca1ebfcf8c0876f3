//! A WASI 0.3 HTTP component that awaits a timer: `GET /?ms=N` answers `slept N ms` after N
//! milliseconds (default 10). While it waits, its instance serves other requests: the host
//! may hand one instance up to `pool.maxConcurrency` requests at once.

use wasip3::clocks::monotonic_clock;
use wasip3::exports::http::handler::Guest;
use wasip3::http::types::{ErrorCode, Request, Response};
use weft_guest_p3::{param, respond};

struct Sleep;

impl Guest for Sleep {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let ms: u64 = param(&request, "ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        monotonic_clock::wait_for(ms * 1_000_000).await;
        respond(200, format!("slept {ms} ms\n"))
    }
}

wasip3::http::service::export!(Sleep);
