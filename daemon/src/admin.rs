//! The admin HTTP server each daemon serves on a port of its own: `/metrics` (OpenMetrics
//! text), `/healthz`, `/readyz` for Prometheus and probes, and what the daemon adds for its
//! operators only (the host-agent's `/workloads`), answered only to a client on the host itself
//! (loopback: `kubectl port-forward`, `kubectl exec`), never to another Pod. GET and HEAD only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

const PLAIN: &str = "text/plain; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a daemon serves on its admin port.
pub trait Endpoints: Send + Sync + 'static {
    /// The metrics `/metrics` encodes.
    fn registry(&self) -> &Registry;

    /// Whether `/readyz` answers 200, and the word it answers with.
    fn readiness(&self) -> (bool, &'static str);

    /// The answer for any other path, given only to a client on the host itself; `None` is 404.
    fn private(&self, path: &str) -> impl Future<Output = Option<Reply>> + Send {
        let _ = path;
        async { None }
    }
}

/// A response body and its type.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn json(body: String) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: "application/json",
            body,
        }
    }

    fn plain(status: StatusCode, body: &str) -> Self {
        Self {
            status,
            content_type: PLAIN,
            body: format!("{body}\n"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (admin): {source}")]
pub struct BindError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds `addr`; fails at once if the address is taken, rather than in the background.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Serves `endpoints` on `listener` until the task is dropped.
pub async fn serve<E: Endpoints>(listener: TcpListener, endpoints: Arc<E>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "admin server: accept failed");
                continue;
            }
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let endpoints = endpoints.clone();
                async move {
                    let (method, path) = (request.method(), request.uri().path());
                    let reply = respond(method, path, peer, &*endpoints).await;
                    Ok::<_, Infallible>(to_response(reply))
                }
            });
            if let Err(error) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "admin server: connection failed");
            }
        });
    }
}

/// The answer to `method path` from `peer`.
pub async fn respond<E: Endpoints>(
    method: &Method,
    path: &str,
    peer: SocketAddr,
    endpoints: &E,
) -> Reply {
    if method != Method::GET && method != Method::HEAD {
        return Reply::plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    match path {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, endpoints.registry()) {
                Ok(()) => Reply {
                    status: StatusCode::OK,
                    content_type: OPENMETRICS,
                    body,
                },
                Err(_) => Reply::plain(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed"),
            }
        }
        "/healthz" => Reply::plain(StatusCode::OK, "ok"),
        "/readyz" => match endpoints.readiness() {
            (true, word) => Reply::plain(StatusCode::OK, word),
            (false, word) => Reply::plain(StatusCode::SERVICE_UNAVAILABLE, word),
        },
        // The port is open to Prometheus and probes; what only operators read stays on the host.
        path => match endpoints.private(path).await {
            None => Reply::plain(StatusCode::NOT_FOUND, "not found"),
            Some(reply) if peer.ip().to_canonical().is_loopback() => reply,
            Some(_) => Reply::plain(
                StatusCode::FORBIDDEN,
                &format!("{path} is served only on the host itself (kubectl port-forward)"),
            ),
        },
    }
}

fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(reply.content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[derive(Default)]
    struct Daemon {
        registry: Registry,
        ready: AtomicBool,
    }

    impl Endpoints for Daemon {
        fn registry(&self) -> &Registry {
            &self.registry
        }

        fn readiness(&self) -> (bool, &'static str) {
            match self.ready.load(Ordering::Relaxed) {
                true => (true, "ok"),
                false => (false, "starting"),
            }
        }

        async fn private(&self, path: &str) -> Option<Reply> {
            (path == "/extra").then(|| Reply::json("[]".into()))
        }
    }

    #[tokio::test]
    async fn routes() {
        let daemon = Daemon::default();
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let get = async |path| respond(&Method::GET, path, local, &daemon).await.status;
        assert_eq!(get("/healthz").await, StatusCode::OK);
        assert_eq!(get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
        daemon.ready.store(true, Ordering::Relaxed);
        assert_eq!(get("/readyz").await, StatusCode::OK);
        assert_eq!(get("/metrics").await, StatusCode::OK);
        assert_eq!(get("/extra").await, StatusCode::OK);
        assert_eq!(get("/nope").await, StatusCode::NOT_FOUND);
        assert_eq!(
            respond(&Method::POST, "/metrics", local, &daemon)
                .await
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[tokio::test]
    async fn private_paths_only_for_the_host_itself() {
        let daemon = Daemon::default();
        daemon.ready.store(true, Ordering::Relaxed);
        for (peer, private) in [
            ("127.0.0.1:1", StatusCode::OK),
            ("[::1]:1", StatusCode::OK),
            ("[::ffff:127.0.0.1]:1", StatusCode::OK),
            ("10.244.0.7:1", StatusCode::FORBIDDEN),
            ("[::ffff:10.244.0.7]:1", StatusCode::FORBIDDEN),
            ("[fd00::7]:1", StatusCode::FORBIDDEN),
        ] {
            let peer: SocketAddr = peer.parse().unwrap();
            let get = async |path| respond(&Method::GET, path, peer, &daemon).await;
            assert_eq!(get("/extra").await.status, private, "{peer}");
            // What Prometheus and probes need is served to anyone who can reach the port.
            assert_eq!(get("/metrics").await.status, StatusCode::OK, "{peer}");
            assert_eq!(get("/readyz").await.status, StatusCode::OK, "{peer}");
            assert_eq!(get("/nope").await.status, StatusCode::NOT_FOUND, "{peer}");
        }
        let refused = respond(
            &Method::GET,
            "/extra",
            "10.0.0.1:1".parse().unwrap(),
            &daemon,
        )
        .await;
        assert!(
            refused.body.contains("only on the host itself"),
            "{}",
            refused.body
        );
    }
}
