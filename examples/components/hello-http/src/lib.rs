//! The smallest useful `wasi:http/proxy` component: every request gets a greeting.
//! The `v2` feature changes the greeting so tests can watch a live update roll out.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};
use weft_guest::respond;

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

wasip2::http::proxy::export!(Hello);
