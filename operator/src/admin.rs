//! The admin HTTP server on `--metrics-listen`: `/metrics` (Prometheus text), `/healthz` and
//! `/readyz`.
//!
//! - `/healthz` answers 200 while the process serves: a leader that cannot renew its Lease exits
//!   rather than reporting unhealthy.
//! - `/readyz` answers 200 with `leader` (controllers running) or `standby` (healthy, waiting for
//!   the Lease), and 503 `starting` until the API server answered the first time. Standbys are
//!   ready so that a rollout is not blocked by the replicas that are not leading.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::error::chain;
use crate::metrics::Metrics;

/// What this replica is doing, as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    Starting = 0,
    Standby = 1,
    Leader = 2,
}

/// The replica's role, shared between the leader election and the admin server.
#[derive(Debug, Default)]
pub struct Health {
    role: AtomicU8,
}

impl Health {
    pub fn set(&self, role: Role) {
        self.role.store(role as u8, Ordering::Relaxed);
    }

    pub fn role(&self) -> Role {
        match self.role.load(Ordering::Relaxed) {
            1 => Role::Standby,
            2 => Role::Leader,
            _ => Role::Starting,
        }
    }
}

/// Binds `addr`; fails at once if the address is taken, rather than in the background.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves the admin endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Arc<Health>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(error = %chain(&error), "admin server: accept failed");
                continue;
            }
        };
        let metrics = metrics.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&request, &metrics, &health);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %error, "admin server: connection failed");
            }
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// The response to one admin request.
pub fn respond(
    request: &Request<Incoming>,
    metrics: &Metrics,
    health: &Health,
) -> Response<Full<Bytes>> {
    route(request.method(), request.uri().path(), metrics, health)
}

fn route(method: &Method, path: &str, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if method != Method::GET && method != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "method not allowed\n".into(),
        );
    }
    match path {
        "/metrics" => match metrics.encode() {
            Ok(body) => text(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body,
            ),
            Err(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                PLAIN,
                "encoding failed\n".into(),
            ),
        },
        "/healthz" => text(StatusCode::OK, PLAIN, "ok\n".into()),
        "/readyz" => match health.role() {
            Role::Leader => text(StatusCode::OK, PLAIN, "leader\n".into()),
            Role::Standby => text(StatusCode::OK, PLAIN, "standby\n".into()),
            Role::Starting => text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, "starting\n".into()),
        },
        _ => text(StatusCode::NOT_FOUND, PLAIN, "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let metrics = Metrics::default();
        let health = Health::default();
        let get = |path| route(&Method::GET, path, &metrics, &health).status();
        assert_eq!(get("/healthz"), StatusCode::OK);
        assert_eq!(get("/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        health.set(Role::Standby);
        assert_eq!(
            route(&Method::GET, "/readyz", &metrics, &health).status(),
            StatusCode::OK
        );
        assert_eq!(get("/metrics"), StatusCode::OK);
        assert_eq!(get("/nope"), StatusCode::NOT_FOUND);
        assert_eq!(
            route(&Method::POST, "/metrics", &metrics, &health).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
