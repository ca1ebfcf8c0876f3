//! The smallest useful WASI 0.3 HTTP component (`wasi:http/service@0.3`): every request gets a
//! greeting. One instance may serve many requests at once.

use wasip3::exports::http::handler::Guest;
use wasip3::http::types::{ErrorCode, Request, Response};

struct Hello;

impl Guest for Hello {
    async fn handle(_request: Request) -> Result<Response, ErrorCode> {
        weft_guest_p3::respond(200, "Hello from Weft!\n")
    }
}

wasip3::http::service::export!(Hello);
