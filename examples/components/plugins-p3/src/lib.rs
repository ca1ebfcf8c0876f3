//! A WASI 0.3 HTTP component over every plugin. The interfaces with no 0.3 version yet link into
//! 0.3 components unchanged; wasi:filesystem is 0.3's own:
//!
//! - `GET /incr?key=K` adds one to K in bucket `counter` (`wasi:keyvalue`) and answers
//!   `<greeting> K=<n>`, the greeting read from `wasi:config` (default `count`); each request logs
//!   one line through `wasi:logging`.
//! - `PUT /blob/<name>` stores the body in container `p3` (`wasi:blobstore`); `GET /blob/<name>`
//!   answers it.
//! - `POST /publish/<subject>` publishes the body (`wasmcloud:messaging`).
//! - `PUT /file/<name>` writes the body to the `/data` preopen (`wasi:filesystem@0.3`);
//!   `GET /file/<name>` reads it back.

use wasip3::exports::http::handler::Guest;
use wasip3::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};
use wasip3::http::types::{ErrorCode, Method, Request, Response};
use wasip3::wit_stream;
use weft_guest_p3::{param, path, read_body, respond};

wit_bindgen::generate!({
    path: "../../wit",
    world: "plugins-p3",
    with: {
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
    },
    generate_all,
});

use wasi::blobstore::blobstore;
use wasi::blobstore::types::{IncomingValue, OutgoingValue};
use wasi::config::store as config;
use wasi::keyvalue::{atomics, store};
use wasi::logging::logging::{Level, log};
use wasmcloud::messaging::consumer;
use wasmcloud::messaging::types::BrokerMessage;

struct PluginsP3;

impl Guest for PluginsP3 {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path = path(&request);
        log(Level::Info, "plugins-p3", &path);
        match serve(request, &path).await {
            Ok(body) => respond(200, body),
            Err(e) => respond(500, format!("{e}\n")),
        }
    }
}

async fn serve(request: Request, path: &str) -> Result<Vec<u8>, String> {
    let method = request.get_method();
    match (method, path.split_once('/').map(|(_, rest)| rest)) {
        (Method::Get, Some("incr")) => incr(&param(&request, "key").unwrap_or_default()),
        (Method::Put, Some(rest)) if rest.starts_with("blob/") => {
            let body = read_body(request).await?;
            put_blob(&rest[5..], body)
        }
        (Method::Get, Some(rest)) if rest.starts_with("blob/") => get_blob(&rest[5..]),
        (Method::Post, Some(rest)) if rest.starts_with("publish/") => {
            let body = read_body(request).await?;
            consumer::publish(&BrokerMessage {
                subject: rest[8..].to_string(),
                body,
                reply_to: None,
            })
            .map(|()| format!("published to {}\n", &rest[8..]).into_bytes())
        }
        (Method::Put, Some(rest)) if rest.starts_with("file/") => {
            let body = read_body(request).await?;
            write_file(&rest[5..], body).await
        }
        (Method::Get, Some(rest)) if rest.starts_with("file/") => read_file(&rest[5..]).await,
        _ => Err("try /incr, /blob/<name>, /publish/<subject> or /file/<name>".into()),
    }
}

fn incr(key: &str) -> Result<Vec<u8>, String> {
    let bucket = store::open("counter").map_err(|e| format!("keyvalue error: {e:?}"))?;
    let n = atomics::increment(&bucket, key, 1).map_err(|e| format!("keyvalue error: {e:?}"))?;
    let greeting = config::get("greeting").ok().flatten();
    let greeting = greeting.as_deref().unwrap_or("count");
    Ok(format!("{greeting} {key}={n}\n").into_bytes())
}

fn put_blob(name: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let container = match blobstore::container_exists("p3")? {
        true => blobstore::get_container("p3")?,
        false => blobstore::create_container("p3")?,
    };
    let value = OutgoingValue::new_outgoing_value();
    let sink = value
        .outgoing_value_write_body()
        .map_err(|()| "no body stream".to_string())?;
    container.write_data(name, &value)?;
    sink.blocking_write_and_flush(&body)
        .map_err(|e| format!("writing the object: {e:?}"))?;
    drop(sink);
    OutgoingValue::finish(value)?;
    Ok(format!("stored {} bytes\n", body.len()).into_bytes())
}

fn get_blob(name: &str) -> Result<Vec<u8>, String> {
    let container = blobstore::get_container("p3")?;
    let size = container.object_info(name)?.size;
    let value = container.get_data(name, 0, size.saturating_sub(1))?;
    IncomingValue::incoming_value_consume_sync(value)
}

/// The directory preopened as `/data`.
fn data_dir() -> Result<Descriptor, String> {
    wasip3::filesystem::preopens::get_directories()
        .into_iter()
        .find_map(|(dir, path)| (path == "/data").then_some(dir))
        .ok_or_else(|| "no /data preopen".to_string())
}

async fn write_file(name: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let file = data_dir()?
        .open_at(
            PathFlags::empty(),
            name.to_string(),
            OpenFlags::CREATE | OpenFlags::TRUNCATE,
            DescriptorFlags::WRITE,
        )
        .await
        .map_err(|e| format!("open: {e:?}"))?;
    let size = body.len();
    let (mut tx, rx) = wit_stream::new();
    let written = file.write_via_stream(rx, 0);
    let rest = tx.write_all(body).await;
    drop(tx);
    if !rest.is_empty() {
        return Err("the file stream closed early".into());
    }
    written.await.map_err(|e| format!("write: {e:?}"))?;
    Ok(format!("wrote {size} bytes\n").into_bytes())
}

async fn read_file(name: &str) -> Result<Vec<u8>, String> {
    let file = data_dir()?
        .open_at(
            PathFlags::empty(),
            name.to_string(),
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .await
        .map_err(|e| format!("open: {e:?}"))?;
    let (mut data, result) = file.read_via_stream(0);
    let mut all = Vec::new();
    loop {
        let (status, chunk) = data.read(Vec::with_capacity(64 * 1024)).await;
        all.extend_from_slice(&chunk);
        if !matches!(status, wasip3::wit_bindgen::StreamResult::Complete(_)) {
            break;
        }
    }
    drop(data);
    result.await.map_err(|e| format!("read: {e:?}"))?;
    Ok(all)
}

wasip3::http::service::export!(PluginsP3);
