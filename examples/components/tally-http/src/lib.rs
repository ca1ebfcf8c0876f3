//! Serves `GET /?name=X` by opening the `weft:examples/tally` counter named X (a resource
//! a host plugin hands out) and counting three times: the body is the three values.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};
use weft_guest::respond;

wit_bindgen::generate!({ path: "../../wit", world: "tally-http" });

use weft::examples::tally::Counter;

struct TallyHttp;

impl Guest for TallyHttp {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let name = path_with_query
            .split_once("?name=")
            .map_or("", |(_, name)| name);
        let counter = Counter::new(name);
        let body = format!("{} {} {}\n", counter.next(), counter.next(), counter.next());
        respond(out, 200, body.as_bytes());
    }
}

wasip2::http::proxy::export!(TallyHttp);
