//! Serves `GET /?name=X` with the answer of the imported `weft:examples/greet`
//! interface, which another component (`greeter`) provides at runtime.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};
use weft_guest::respond;

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

wasip2::http::proxy::export!(GreetHttp);
