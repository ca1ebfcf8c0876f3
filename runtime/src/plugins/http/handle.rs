//! Serving one request on a route's component, through the one invocation path. The guest runs
//! in a task of its own so it can keep streaming the body after the response head is sent;
//! until the head is out, a client that goes away cancels the call. A 0.2 call ends when
//! `handle` returns; a 0.3 call on an instance of its own when the body it returned has been
//! sent, on a shared instance when the response is out (its body is cut at the deadline).

use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::Instrument;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use wasmtime::AsContextMut;
use wasmtime_wasi_http::p2::bindings::ProxyIndices;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p3::bindings::ServiceIndices;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use super::export::HttpExport;
use super::request_body::GuardedBody;
use super::response_body::ResponseBody;
use crate::instance::{Call, Failure, Guest};
use crate::router::Route;
use crate::store::Ctx;

/// The response head a call hands to the client, or why the component failed it.
type Head = Result<hyper::Response<WasiBody>, String>;

/// The request as a guest gets it: its body bounded, and ended with the call (see
/// [`GuardedBody`]).
type GuestRequest = hyper::Request<GuardedBody>;

/// How a 0.3 request's body was consumed, as `into_http` wants it.
type RequestIo = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
>;

/// Serves one request on the route's component.
pub async fn handle(
    route: Arc<Route>,
    request: hyper::Request<Incoming>,
    body_idle_timeout: Duration,
) -> hyper::Response<WasiBody> {
    let limit = route.component.spec.limits.max_request_body;
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return error_response(
            413,
            &format!(
                "request body is over this component's limit of {limit} bytes (limits.maxRequestBody)"
            ),
        );
    }
    let (request_over, over) = oneshot::channel();
    let request = request.map(|body| GuardedBody::new(body, limit, body_idle_timeout, over));
    let (sender, mut receiver) = oneshot::channel();
    let component = route.component.clone();
    let shared = component.shared.is_some();
    let export = route.export.clone();
    let span = crate::trace_context::server_span(&request);
    let mut call = Box::pin(
        async move {
            component
                .invoke(
                    "wasi:http/incoming-handler.handle",
                    move |guest| match &*export {
                        HttpExport::P2(indices) => {
                            call_p2(guest, indices, request, sender, request_over)
                        }
                        HttpExport::P3(indices) => {
                            call_p3(guest, indices, request, sender, request_over)
                        }
                    },
                )
                .await
        }
        .instrument(span),
    );
    // The call runs here until its response head is out (a client that goes away before then
    // drops it), then in a task of its own while the guest may still write the body.
    let ended = tokio::select! {
        biased;
        head = &mut receiver => Err(head),
        ended = &mut call => Ok(ended),
    };
    let (head, ended) = match ended {
        Err(head) => (head.map_err(|_| ()), None),
        Ok(ended) => (receiver.try_recv().map_err(|_| ()), Some(ended)),
    };
    match (head, ended) {
        (Ok(Ok(response)), None) => {
            // On an instance of its own the call holds its store: it must go on. A shared
            // instance's call goes on without its caller, which only waits for the result.
            if !shared {
                tokio::spawn(call);
            }
            response
        }
        (Ok(Ok(response)), Some(_)) => response,
        (Ok(Err(code)), _) => error_response(500, &format!("component failed: {code}")),
        // The guest dropped the response without setting it: it trapped, timed out, or forgot.
        (Err(_), ended) => {
            let failure = match ended {
                Some(Err(failure)) => failure,
                Some(Ok(())) => Failure::Host("component did not set a response".into()),
                None => match call.await {
                    Err(failure) => failure,
                    Ok(()) => Failure::Host("component did not set a response".into()),
                },
            };
            failure_response(&failure)
        }
    }
}

/// `wasi:http/incoming-handler@0.2`: the guest sets the response through an outparam. A call
/// that returns without setting one fails (so a pooled instance is not kept), rather than
/// leaving the client waiting.
fn call_p2<'a>(
    guest: Guest<'a>,
    indices: &ProxyIndices,
    request: GuestRequest,
    head: oneshot::Sender<Head>,
    request_over: oneshot::Sender<()>,
) -> Call<'a, ()> {
    let set = Arc::new(AtomicBool::new(false));
    let prepared = guest.accessor.with(|mut access| {
        let proxy = indices.load(&mut access, &guest.instance)?;
        let mut http = access.data_mut().http();
        let request = http.new_incoming_request(Scheme::Http, request)?;
        let set = set.clone();
        let out = http.new_response_outparam_from_callback(move |response| {
            set.store(true, Ordering::Relaxed);
            let _ = head.send(response.map_err(|code| format!("{code:?}")));
        })?;
        let handler = proxy.wasi_http_incoming_handler().func_handle();
        let call = handler.start_call_concurrent(access.as_context_mut(), (request, out))?;
        wasmtime::Result::<_>::Ok((handler, call))
    });
    Box::pin(async move {
        let _request_over = request_over;
        let (handler, call) = prepared?;
        guest.track(call.task());
        handler.finish_call_concurrent(guest.accessor, call).await?;
        if !set.load(Ordering::Relaxed) {
            wasmtime::bail!("the component returned without setting a response");
        }
        Ok(())
    })
}

/// `wasi:http/handler@0.3`: `handle` returns the response, whose body the guest may go on
/// writing until the call's deadline.
fn call_p3<'a>(
    guest: Guest<'a>,
    indices: &ServiceIndices,
    request: GuestRequest,
    head: oneshot::Sender<Head>,
    request_over: oneshot::Sender<()>,
) -> Call<'a, ()> {
    let prepared = guest.accessor.with(|mut access| {
        let service = indices.load(&mut access, &guest.instance)?;
        let http = access.data_mut().http();
        let (request, io) = wasmtime_wasi_http::p3::Request::from_http(http.hooks, request);
        // Boxed at once: the future is 'static, but its type names the hooks' borrow.
        let io: RequestIo = Box::pin(io);
        let request = http.table.push(request)?;
        let handler = service.wasi_http_handler().func_handle();
        let call = handler.start_call_concurrent(access.as_context_mut(), (request,))?;
        wasmtime::Result::<_>::Ok((handler, call, io))
    });
    Box::pin(async move {
        let (handler, call, io) = prepared?;
        guest.track(call.task());
        let (result,) = handler.finish_call_concurrent(guest.accessor, call).await?;
        let response = match result {
            Ok(response) => guest.accessor.with(|mut access| {
                let response = access.data_mut().http().table.delete(response)?;
                response.into_http_with_getter(&mut access, io, <Ctx as WasiHttpView>::http)
            })?,
            Err(code) => {
                let _ = head.send(Err(format!("{code:?}")));
                return Ok(());
            }
        };
        // The request lasts as long as its response's body, which the guest may go on writing
        // (and reading the request's body for) after `handle` returned.
        let (done, body_ended) = oneshot::channel();
        let response = response.map(|body| {
            ResponseBody::new(body, guest.deadline, (done, request_over)).boxed_unsync()
        });
        // On an instance of its own the call keeps it until the body is out; on a shared one
        // the instance lives on, and the body is work the call left behind (within its
        // deadline, as any), so the instance may take its next call now.
        if head.send(Ok(response)).is_ok() && !guest.shared {
            let _ = body_ended.await;
        }
        Ok(())
    })
}

/// What the client is told when an invocation fails; overload says when to come back.
pub fn failure_response(failure: &Failure) -> hyper::Response<WasiBody> {
    let status = match failure {
        Failure::Timeout => 504,
        f if f.is_overload() => 503,
        _ => 500,
    };
    let mut response = error_response(status, &failure.to_string());
    if failure.is_overload() {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    response
}

/// A plain-text response written by the host, not the guest.
pub fn error_response(status: u16, message: &str) -> hyper::Response<WasiBody> {
    let body = Full::new(Bytes::from(format!("{message}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    hyper::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .expect("a static response is valid")
}
