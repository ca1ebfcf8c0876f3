//! Serves `GET /?name=X` by opening the `weft:examples/tally` counter named X (a resource
//! a host plugin hands out) and counting three times: the body is the three values.

use std::io::Write as _;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

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

wasip2::http::proxy::export!(TallyHttp);
