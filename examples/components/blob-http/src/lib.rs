//! A blob store over HTTP (wasi:blobstore), streaming both ways:
//! `PUT /<container>/<object>` stores the request body (making the container if needed),
//! `GET /<container>/<object>` answers it (`?range=<start>-<end>`, inclusive, for part of it),
//! `DELETE /<container>/<object>` deletes it, `GET /<container>` lists the object names one per
//! line, `DELETE /<container>` deletes the container. A missing container or object is 404;
//! another blobstore error is 500 with its message.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingBody, IncomingRequest, Method, ResponseOutparam};
use wasip2::io::streams::StreamError;
use weft_guest::{respond, respond_stream, write_all};

wit_bindgen::generate!({
    path: "../../wit",
    world: "blob-http",
    with: {
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
    },
    generate_all,
});

use wasi::blobstore::blobstore;
use wasi::blobstore::container::Container;
use wasi::blobstore::types::{IncomingValue, OutgoingValue};

struct BlobHttp;

fn fail(out: ResponseOutparam, err: String) {
    let status = if err.contains("does not exist") {
        404
    } else {
        500
    };
    respond(out, status, format!("blobstore error: {err}\n").as_bytes());
}

impl Guest for BlobHttp {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((&path_with_query, ""));
        let path = path.trim_start_matches('/').to_string();
        let range = query
            .split('&')
            .find_map(|p| p.strip_prefix("range="))
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        let method = request.method();
        let result = match (method, path.split_once('/')) {
            (Method::Put, Some((container, object))) => put(request, container, object),
            (Method::Get, Some((container, object))) => {
                return get(out, container, object, range);
            }
            (Method::Delete, Some((container, object))) => blobstore::get_container(container)
                .and_then(|c| c.delete_object(object))
                .map(|()| format!("deleted {object}\n")),
            (Method::Get, None) if !path.is_empty() => list(&path),
            (Method::Delete, None) if !path.is_empty() => {
                blobstore::delete_container(&path).map(|()| format!("deleted {path}\n"))
            }
            _ => return respond(out, 404, b"try PUT/GET/DELETE /<container>/<object>\n"),
        };
        match result {
            Ok(body) => respond(out, 200, body.as_bytes()),
            Err(e) => fail(out, e),
        }
    }
}

fn container(name: &str) -> Result<Container, String> {
    match blobstore::container_exists(name)? {
        true => blobstore::get_container(name),
        false => blobstore::create_container(name),
    }
}

/// Streams the request body into the object, 64 KiB at a time.
fn put(request: IncomingRequest, name: &str, object: &str) -> Result<String, String> {
    let container = container(name)?;
    let value = OutgoingValue::new_outgoing_value();
    let sink = value
        .outgoing_value_write_body()
        .map_err(|()| "no body stream".to_string())?;
    container.write_data(object, &value)?;
    let body = request
        .consume()
        .map_err(|()| "no request body".to_string())?;
    let source = body.stream().map_err(|()| "no request body".to_string())?;
    let mut size = 0u64;
    while let Ok(chunk) = source.blocking_read(64 * 1024) {
        write_all(&sink, &chunk).map_err(|e| match e {
            StreamError::LastOperationFailed(e) => {
                format!("writing the object: {}", e.to_debug_string())
            }
            StreamError::Closed => "writing the object: the stream closed".to_string(),
        })?;
        size += chunk.len() as u64;
    }
    drop(source);
    IncomingBody::finish(body);
    drop(sink);
    OutgoingValue::finish(value)?;
    Ok(format!("stored {size} bytes in {name}/{object}\n"))
}

fn get(out: ResponseOutparam, name: &str, object: &str, range: Option<(u64, u64)>) {
    let value = blobstore::get_container(name).and_then(|c| {
        let (start, end) = match range {
            Some(range) => range,
            None => (0, c.object_info(object)?.size.saturating_sub(1)),
        };
        c.get_data(object, start, end)
    });
    match value.and_then(IncomingValue::incoming_value_consume_async) {
        Ok(stream) => respond_stream(out, 200, &stream),
        Err(e) => fail(out, e),
    }
}

/// Every object name, read from the stream ten at a time.
fn list(name: &str) -> Result<String, String> {
    let names = blobstore::get_container(name)?.list_objects()?;
    let mut listing = String::new();
    loop {
        let (page, end) = names.read_stream_object_names(10)?;
        for object in page {
            listing.push_str(&object);
            listing.push('\n');
        }
        if end {
            return Ok(listing);
        }
    }
}

wasip2::http::proxy::export!(BlobHttp);
