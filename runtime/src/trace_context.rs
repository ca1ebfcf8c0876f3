//! The W3C trace context at the host's edges: an incoming request's `traceparent` is the
//! parent of its span (and so of its invocation), and an outgoing request carries the context
//! of the invocation that sends it. Without a global propagator (no collector configured) both
//! are no-ops.

use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The span of one incoming HTTP request, child of the client's `traceparent` if it sent one.
pub fn server_span<B>(request: &http::Request<B>) -> tracing::Span {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let method = request.method();
    let span = tracing::info_span!(
        "http request",
        otel.name = %method,
        otel.kind = "server",
        http.request.method = %method,
        url.path = request.uri().path(),
    );
    let _ = span.set_parent(parent);
    span
}

/// Writes the current span's context into an outgoing request's headers.
pub fn inject(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers))
    });
}
