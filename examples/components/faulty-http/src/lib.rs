//! Misbehaves on request, to show that one bad request cannot hurt the host or
//! other requests: `/trap` panics (a Wasm trap), `/loop` spins forever (stopped by
//! the request timeout), `/alloc` grows memory without bound (stopped by the memory
//! limit). `/sleep` blocks in a host call for an hour (stopped by the wall-clock
//! timeout), `/echo` reads the whole request body and answers its length (400 if reading
//! fails, e.g. the body is over the limit or stalls). `/ok` answers normally. `/count` answers
//! how many times this instance has served `/count`: 1 on a fresh instance, more only on an
//! instance kept warm in a pool. `/forget` returns without setting a response; `/hoard` makes host
//! resources without end.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

/// Lives in the instance's memory: what a pooled instance carries from one call to the next.
static COUNT: AtomicU32 = AtomicU32::new(0);

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingBody, IncomingRequest, ResponseOutparam};
use weft_guest::respond;

struct Faulty;

impl Guest for Faulty {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let path = path_with_query.split('?').next().unwrap_or_default();
        match path {
            "/ok" => respond(out, 200, b"ok\n"),
            // Returns without setting a response, as an engine that cannot answer a second
            // event on one instance does (componentize-js in a pool).
            "/forget" => drop(out),
            // Holds host resources without end, as a guest opening files or sockets in a loop
            // would: the host's resource table per instance stops it.
            "/hoard" => {
                let mut held = Vec::new();
                loop {
                    held.push(black_box(wasip2::http::types::Fields::new()));
                }
            }
            "/count" => {
                let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
                respond(out, 200, format!("{n}\n").as_bytes());
            }
            "/trap" => panic!("trap requested"),
            "/loop" => {
                // black_box keeps the optimizer from proving the loop useless.
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "/sleep" => {
                wasip2::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000).block();
                respond(out, 200, b"woke up\n");
            }
            "/echo" => match read_body(request) {
                Ok(n) => respond(out, 200, format!("read {n} bytes\n").as_bytes()),
                Err(e) => respond(out, 400, format!("body read failed: {e}\n").as_bytes()),
            },
            "/alloc" => {
                // Non-zero fill so every page is really touched, not just reserved.
                let mut hog = Vec::new();
                loop {
                    hog.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            _ => respond(out, 404, b"try /ok, /trap, /loop or /alloc\n"),
        }
    }
}

/// Reads the request body to its end, counting bytes.
fn read_body(request: IncomingRequest) -> Result<u64, String> {
    let body = request.consume().map_err(|()| "no body".to_string())?;
    let stream = body.stream().map_err(|()| "no stream".to_string())?;
    let mut total = 0u64;
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => total += chunk.len() as u64,
            Err(wasip2::io::streams::StreamError::Closed) => break,
            Err(wasip2::io::streams::StreamError::LastOperationFailed(e)) => {
                return Err(e.to_debug_string());
            }
        }
    }
    drop(stream);
    IncomingBody::finish(body);
    Ok(total)
}

wasip2::http::proxy::export!(Faulty);
