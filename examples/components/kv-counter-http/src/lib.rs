//! A key-value counter over HTTP (`wasi:keyvalue`), in bucket `?bucket=` (default `counter`):
//! `GET /incr?key=K` adds one and answers the new value; `GET /get?key=K` answers the value
//! (404 if absent); `PUT /set?key=K` stores the body; `GET /keys` lists every key, page by
//! page; `GET /many?keys=a,b` answers `a=<value>` lines in the order asked (`-` if absent).
//! A backend error is answered 500 with the WIT error.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};
use weft_guest::{read_body, respond};

wit_bindgen::generate!({ path: "../../wit", world: "kv-counter-http", generate_all });

use wasi::keyvalue::{atomics, batch, store};

struct KvCounter;

impl Guest for KvCounter {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((&path_with_query, ""));
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_default()
                .to_string()
        };
        let bucket = match store::open(
            &Some(param("bucket"))
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "counter".into()),
        ) {
            Ok(bucket) => bucket,
            Err(e) => return respond(out, 500, format!("keyvalue error: {e:?}\n").as_bytes()),
        };
        let key = param("key");
        let answer = match (request.method(), path) {
            (Method::Get, "/incr") => {
                atomics::increment(&bucket, &key, 1).map(|n| (200, format!("{n}\n")))
            }
            (Method::Get, "/get") => bucket.get(&key).map(|value| match value {
                Some(v) => (200, format!("{}\n", String::from_utf8_lossy(&v))),
                None => (404, format!("no key {key}\n")),
            }),
            (Method::Put, "/set") => {
                let body = read_body(request);
                bucket
                    .set(&key, &body)
                    .map(|()| (200, format!("set {key}\n")))
            }
            (Method::Get, "/keys") => all_keys(&bucket).map(|keys| (200, keys.join("\n") + "\n")),
            (Method::Get, "/many") => {
                let keys: Vec<String> = param("keys").split(',').map(String::from).collect();
                batch::get_many(&bucket, &keys).map(|values| {
                    let lines: Vec<String> = keys
                        .iter()
                        .zip(values)
                        .map(|(k, v)| match v {
                            Some((_, v)) => format!("{k}={}", String::from_utf8_lossy(&v)),
                            None => format!("{k}=-"),
                        })
                        .collect();
                    (200, lines.join("\n") + "\n")
                })
            }
            _ => Ok((404, "try /incr, /get, /set, /keys or /many\n".to_string())),
        };
        match answer {
            Ok((status, body)) => respond(out, status, body.as_bytes()),
            Err(e) => respond(out, 500, format!("keyvalue error: {e:?}\n").as_bytes()),
        }
    }
}

/// Every key of the bucket, following the cursor page by page.
fn all_keys(bucket: &store::Bucket) -> Result<Vec<String>, store::Error> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = bucket.list_keys(cursor)?;
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
}

wasip2::http::proxy::export!(KvCounter);
