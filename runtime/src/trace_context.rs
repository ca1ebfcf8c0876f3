//! The W3C trace context at the host's edges: an incoming request's `traceparent` is the
//! parent of its span (and so of its invocation), an outgoing request or message carries the
//! context of the invocation that sends it, and a message's headers are the parent of the
//! invocation handling it. Without a global propagator (no collector configured) all of these
//! are no-ops.
//!
//! Each edge span also records its `trace_id`, so log lines within it carry the id to look the
//! trace up by.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The span of one incoming HTTP request, child of the client's `traceparent` if it sent one.
pub fn server_span<B>(request: &http::Request<B>) -> tracing::Span {
    let method = request.method();
    let span = tracing::info_span!(
        "http request",
        otel.name = %method,
        otel.kind = "server",
        http.request.method = %method,
        url.path = request.uri().path(),
        trace_id = tracing::field::Empty,
    );
    child_of(span, &HeaderExtractor(request.headers()))
}

#[cfg(feature = "messaging")]
/// The span of one message delivered to a handler, child of the invocation that sent it.
pub fn consumer_span(
    subject: &str,
    headers: &std::collections::HashMap<String, String>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "message",
        otel.name = %format_args!("wasmcloud:messaging deliver {subject}"),
        otel.kind = "consumer",
        messaging.destination.name = subject,
        trace_id = tracing::field::Empty,
    );
    child_of(span, headers)
}

/// Makes what `carrier` holds the parent of `span`, and records the trace's id on it.
fn child_of(span: tracing::Span, carrier: &dyn Extractor) -> tracing::Span {
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(carrier));
    let _ = span.set_parent(parent);
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span
}

/// Writes the current span's context into an outgoing request's headers.
pub fn inject(headers: &mut http::HeaderMap) {
    inject_into(&mut HeaderInjector(headers));
}

#[cfg(feature = "messaging")]
/// Writes the current span's context into an outgoing message's headers.
pub fn inject_message(headers: &mut std::collections::HashMap<String, String>) {
    inject_into(headers);
}

fn inject_into(carrier: &mut dyn Injector) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, carrier)
    });
}
