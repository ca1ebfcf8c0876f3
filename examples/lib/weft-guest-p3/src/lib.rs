//! What the WASI 0.3 example guests share: answering with a plain-text body written by a task
//! of its own (a 0.3 response's body is a stream the host reads after `handle` returns),
//! query parameters, and reading a request body to its end.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_future, wit_stream};

/// A response with `status` and a `text/plain` body.
pub fn respond(status: u16, body: impl Into<Vec<u8>>) -> Result<Response, ErrorCode> {
    let body = body.into();
    respond_with(status, "text/plain", move |mut tx| async move {
        let rest = tx.write_all(body).await;
        debug_assert!(rest.is_empty());
    })
}

/// A response with `status` whose body `write` produces, in a task that outlives `handle`.
pub fn respond_with<F, Fut>(status: u16, content_type: &str, write: F) -> Result<Response, ErrorCode>
where
    F: FnOnce(wasip3::wit_bindgen::StreamWriter<u8>) -> Fut + 'static,
    Fut: core::future::Future<Output = ()> + 'static,
{
    let headers = Fields::from_list(&[("content-type".into(), content_type.as_bytes().to_vec())])
        .map_err(|e| ErrorCode::InternalError(Some(format!("{e:?}"))))?;
    let (tx, rx) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(headers, Some(rx), trailers_rx);
    drop(trailers_tx);
    response
        .set_status_code(status)
        .map_err(|()| ErrorCode::InternalError(Some("bad status".into())))?;
    wasip3::spawn_local(write(tx));
    Ok(response)
}

/// The path of `request`, without its query.
pub fn path(request: &Request) -> String {
    let full = request.get_path_with_query().unwrap_or_default();
    full.split('?').next().unwrap_or_default().to_string()
}

/// The query parameter `name` of `request`, if given.
pub fn param(request: &Request, name: &str) -> Option<String> {
    let full = request.get_path_with_query().unwrap_or_default();
    let (_, query) = full.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_string)
}

/// Reads the body of `request` to its end, or says why it could not.
pub async fn read_body(request: Request) -> Result<Vec<u8>, String> {
    let (_, result_rx) = wit_future::new(|| Ok(()));
    let (mut body, trailers) = Request::consume_body(request, result_rx);
    let mut all = Vec::new();
    loop {
        let (status, chunk) = body.read(Vec::with_capacity(64 * 1024)).await;
        all.extend_from_slice(&chunk);
        if matches!(status, wasip3::wit_bindgen::StreamResult::Dropped) {
            break;
        }
        if matches!(status, wasip3::wit_bindgen::StreamResult::Cancelled) {
            return Err("read cancelled".into());
        }
    }
    drop(body);
    match trailers.await {
        Ok(_) => Ok(all),
        Err(e) => Err(format!("{e:?}")),
    }
}
