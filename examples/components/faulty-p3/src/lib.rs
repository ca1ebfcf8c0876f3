//! A WASI 0.3 HTTP component that misbehaves on request, to show that one bad request cannot
//! hurt the host, other workloads, or (where Wasmtime allows) other requests on its instance:
//!
//! - `/ok` answers; `/sleep?ms=N` answers after N ms (a neighbour for the others);
//!   `/count` answers how many `/count` calls this instance served; `/echo` reads the body and
//!   answers its length.
//! - `/spin?after=N` computes forever without yielding (after waiting N ms); `/trap` panics; `/alloc` grows memory without
//!   bound.
//! - `/leak?kind=sleep|spin` answers at once, then leaves a task running that outlives the
//!   request (sleeping for an hour, or spinning from 100 ms on).
//! - `/fetch?url=http://host:port/path` sends a request through `wasi:http/client` and answers
//!   the status and body it got, or 502 with the error (egress is the host's to allow).
//! - `/keep-body` keeps the request's body stream in the instance and answers at once;
//!   `/stolen-body` reads what a kept stream still gives (`none`, `closed`, or `read N bytes`).

use std::cell::{Cell, RefCell};
use std::hint::black_box;

use wasip3::clocks::monotonic_clock;
use wasip3::exports::http::handler::Guest;
use wasip3::http::client;
use wasip3::http::types::{ErrorCode, Fields, Request, Response, Scheme};
use wasip3::wit_bindgen::{StreamReader, StreamResult};
use wasip3::wit_future;
use weft_guest_p3::{param, path, read_body, respond};

thread_local! {
    /// Lives in the instance's memory: what one request leaves, the next on the instance sees.
    static COUNT: Cell<u32> = const { Cell::new(0) };
    static KEPT: RefCell<Option<StreamReader<u8>>> = const { RefCell::new(None) };
}

const HOUR_NS: u64 = 3_600_000_000_000;

struct Faulty;

impl Guest for Faulty {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        match path(&request).as_str() {
            "/ok" => respond(200, "ok\n"),
            "/sleep" => {
                let ms: u64 = param(&request, "ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(100);
                monotonic_clock::wait_for(ms * 1_000_000).await;
                respond(200, format!("slept {ms} ms\n"))
            }
            "/count" => {
                let n = COUNT.get() + 1;
                COUNT.set(n);
                respond(200, format!("{n}\n"))
            }
            "/echo" => match read_body(request).await {
                Ok(body) => respond(200, format!("read {} bytes\n", body.len())),
                Err(e) => respond(400, format!("body read failed: {e}\n")),
            },
            "/spin" => {
                let after: u64 = param(&request, "after")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                monotonic_clock::wait_for(after * 1_000_000).await;
                spin()
            }
            "/trap" => panic!("trap requested"),
            "/alloc" => {
                let mut hog = Vec::new();
                loop {
                    hog.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            "/leak" => {
                let spin_after = param(&request, "kind").as_deref() == Some("spin");
                wasip3::spawn_local(async move {
                    if spin_after {
                        // Once the response is out: spinning sooner would hold it back too.
                        monotonic_clock::wait_for(100_000_000).await;
                        spin();
                    }
                    monotonic_clock::wait_for(HOUR_NS).await;
                });
                respond(200, "leaked\n")
            }
            "/fetch" => match fetch(&param(&request, "url").unwrap_or_default()).await {
                Ok((status, body)) => respond(200, format!("{status} {body}")),
                Err(e) => respond(502, format!("outgoing request failed: {e}\n")),
            },
            "/keep-body" => {
                let (_, result_rx) = wit_future::new(|| Ok(()));
                let (body, _trailers) = Request::consume_body(request, result_rx);
                KEPT.with(|kept| *kept.borrow_mut() = Some(body));
                respond(200, "kept\n")
            }
            "/stolen-body" => {
                let Some(mut body) = KEPT.with(|kept| kept.borrow_mut().take()) else {
                    return respond(200, "none\n");
                };
                let (status, chunk) = body.read(Vec::with_capacity(64 * 1024)).await;
                match status {
                    StreamResult::Complete(_) => respond(200, format!("read {} bytes\n", chunk.len())),
                    _ => respond(200, "closed\n"),
                }
            }
            _ => respond(404, "try /ok, /sleep, /count, /echo, /spin, /trap, /alloc, /leak, /keep-body\n"),
        }
    }
}

/// GETs `url` (`http://host[:port]/path`): the status and the body as text.
async fn fetch(url: &str) -> Result<(u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (_, trailers) = wit_future::new(|| Ok(None));
    let (request, _sent) = Request::new(Fields::new(), None, trailers, None);
    let set = |ok: Result<(), ()>, what: &str| ok.map_err(|()| format!("bad {what}"));
    set(request.set_scheme(Some(&Scheme::Http)), "scheme")?;
    set(request.set_authority(Some(authority)), "authority")?;
    set(request.set_path_with_query(Some(&format!("/{path}"))), "path")?;
    let response = client::send(request).await.map_err(|e| format!("{e:?}"))?;
    let status = response.get_status_code();
    let (_, result) = wit_future::new(|| Ok(()));
    let (mut body, _trailers) = Response::consume_body(response, result);
    let mut all = Vec::new();
    loop {
        let (status, chunk) = body.read(Vec::with_capacity(16 * 1024)).await;
        all.extend_from_slice(&chunk);
        if !matches!(status, StreamResult::Complete(_)) {
            break;
        }
    }
    Ok((status, String::from_utf8_lossy(&all).into_owned()))
}

fn spin() -> ! {
    // black_box keeps the optimizer from proving the loop useless.
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

wasip3::http::service::export!(Faulty);
