//! The smallest useful `wasi:http/proxy` component: every request gets a greeting.
//! The `v2` feature changes the greeting so tests can watch a live update roll out.

use std::io::Write as _;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const GREETING: &str = if cfg!(feature = "v2") {
    "Hello from Weft v2!\n"
} else {
    "Hello from Weft!\n"
};

struct Hello;

impl Guest for Hello {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        respond(out, 200, GREETING.as_bytes());
    }
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())]).unwrap();
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).unwrap();
    let response_body = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let mut stream = response_body.write().unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
    drop(stream); // a child of the body: it must go before the body is finished
    OutgoingBody::finish(response_body, None).unwrap();
}

wasip2::http::proxy::export!(Hello);
