//! Messaging over HTTP (wasmcloud:messaging/consumer): `POST /publish/<subject>` publishes the
//! request body; `POST /request/<subject>?timeout=<ms>` (default 1000) sends it as a request
//! and answers the reply's body. A broker error is answered 502 with its message.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};
use weft_guest::{read_body, respond};

wit_bindgen::generate!({ path: "../../wit", world: "msg-publisher-http", generate_all });

use wasmcloud::messaging::consumer;
use wasmcloud::messaging::types::BrokerMessage;

struct MsgPublisher;

impl Guest for MsgPublisher {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((&path_with_query, ""));
        let timeout_ms = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("timeout="))
            .and_then(|t| t.parse().ok())
            .unwrap_or(1000);
        let (path, method) = (path.to_string(), request.method());
        let body = read_body(request);
        let answer = match (
            method,
            path.split_once('/')
                .map(|(_, p)| p)
                .unwrap_or("")
                .split_once('/'),
        ) {
            (Method::Post, Some(("publish", subject))) => consumer::publish(&BrokerMessage {
                subject: subject.to_string(),
                body,
                reply_to: None,
            })
            .map(|()| format!("published to {subject}\n").into_bytes()),
            (Method::Post, Some(("request", subject))) => {
                consumer::request(subject, &body, timeout_ms).map(|reply| reply.body)
            }
            _ => {
                return respond(
                    out,
                    404,
                    b"try POST /publish/<subject> or /request/<subject>\n",
                );
            }
        };
        match answer {
            Ok(body) => respond(out, 200, &body),
            Err(e) => respond(out, 502, format!("messaging error: {e}\n").as_bytes()),
        }
    }
}

wasip2::http::proxy::export!(MsgPublisher);
