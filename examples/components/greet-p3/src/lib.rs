//! A WASI 0.3 HTTP component importing `weft:examples/greet`: `GET /?name=X` answers
//! `greet(X)`. The host links the import to a sibling, here the 0.2 `greeter`.

use wasip3::exports::http::handler::Guest;
use wasip3::http::types::{ErrorCode, Request, Response};
use weft_guest_p3::{param, respond};

wit_bindgen::generate!({ path: "../../wit", world: "greet-p3" });

use weft::examples::greet::greet;

struct GreetP3;

impl Guest for GreetP3 {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let name = param(&request, "name").filter(|n| !n.is_empty());
        respond(200, format!("{}\n", greet(name.as_deref().unwrap_or("world"))))
    }
}

wasip3::http::service::export!(GreetP3);
