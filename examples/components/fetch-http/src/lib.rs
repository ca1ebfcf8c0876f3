//! Makes an outgoing `wasi:http` request: `GET /?url=http://host:port/path` fetches
//! that URL and answers with its status and body. If the host refuses or the request
//! fails (e.g. the host is not in `allowedHosts`), answers 502 with the error code.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingRequest, OutgoingRequest, ResponseOutparam, Scheme, http_error_code,
};
use wasip2::io::streams::StreamError;
use weft_guest::respond;

struct FetchHttp;

impl Guest for FetchHttp {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        // `url` must be the first parameter; everything after `url=` is the URL, so it
        // may carry its own query string.
        let url = path_with_query
            .split_once('?')
            .and_then(|(_, q)| q.strip_prefix("url="));
        let Some(upstream) = url.and_then(request_for) else {
            return respond(out, 400, b"usage: /?url=http://host:port/path\n");
        };
        match fetch(upstream) {
            Ok((status, body)) => respond(out, status, &body),
            Err(code) => respond(
                out,
                502,
                format!("outgoing request failed: {code:?}\n").as_bytes(),
            ),
        }
    }
}

/// A GET request for a plain `http(s)://authority/path?query` URL.
fn request_for(url: &str) -> Option<OutgoingRequest> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return None,
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&scheme)).ok()?;
    request.set_authority(Some(authority)).ok()?;
    request.set_path_with_query(Some(path)).ok()?;
    Some(request)
}

fn fetch(request: OutgoingRequest) -> Result<(u16, Vec<u8>), ErrorCode> {
    let pending = outgoing_handler::handle(request, None)?;
    pending.subscribe().block();
    let response = pending
        .get()
        .expect("ready after block")
        .expect("first get")?;

    let body = response.consume().expect("body not yet consumed");
    let stream = body.stream().expect("stream not yet taken");
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(http_error_code(&e)
                    .unwrap_or_else(|| ErrorCode::InternalError(Some(e.to_debug_string()))));
            }
        }
    }
    Ok((response.status(), bytes))
}

wasip2::http::proxy::export!(FetchHttp);
