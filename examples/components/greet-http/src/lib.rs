//! Serves `GET /?name=X` with the answer of the imported `weft:examples/greet`
//! interface, which another component (`greeter`) provides at runtime.

use std::io::Write as _;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({ path: "../../wit", world: "greet-http" });

use weft::examples::greet::greet;

struct GreetHttp;

impl Guest for GreetHttp {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let name = query_param(&path_with_query, "name").filter(|n| !n.is_empty());
        let body = format!("{}\n", greet(name.unwrap_or("world")));
        respond(out, 200, body.as_bytes());
    }
}

/// The raw (not percent-decoded) value of `key` in the query string.
fn query_param<'a>(path_with_query: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = path_with_query.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
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

wasip2::http::proxy::export!(GreetHttp);
