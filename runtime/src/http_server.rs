//! The host's one HTTP listener: every request goes to the workload its `Host` header names.
//! Clients are untrusted too: connections are capped (past the cap, 503 with `Retry-After`),
//! a client must send its request head within the header timeout (slowloris) and keep its body
//! coming within the idle timeout, and a body may not exceed the component's limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::plugins::http::{HttpPlugin, error_response, handle};

/// How long in-flight requests may finish after shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(10);

/// What the listener allows each client.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// Connections open at once; past it new ones are answered 503.
    pub max_connections: usize,
    /// Time to send a request head, from connecting or from the previous response.
    pub header_timeout: Duration,
    /// Longest pause while sending a request body.
    pub body_idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves HTTP on `listener` until `shutdown` resolves, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    plugin: Arc<HttpPlugin>,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(limits.header_timeout)
        .max_concurrent_streams(100)
        .max_header_list_size(64 * 1024);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service_limits = limits.clone();
        let plugin = plugin.clone();
        let service = service_fn(move |request| {
            let plugin = plugin.clone();
            let limits = service_limits.clone();
            async move { Ok::<_, std::convert::Infallible>(route(&plugin, &limits, request).await) }
        });
        let header_timeout = limits.header_timeout;
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            // Telling HTTP/1 from HTTP/2 waits for the first bytes, before hyper's own header
            // timeout starts: a client that connects and says nothing is dropped here.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(header_timeout, stream.peek(&mut first)).await,
                Ok(Ok(1..))
            ) {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, err = %err, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP connections were still open after {DRAIN:?}");
    }
    Ok(())
}

/// Answers a connection over the cap with 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "host is at its connection limit\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(response.as_bytes()),
    )
    .await;
}

/// The target of the access log: one `debug` event per request when its response head is out
/// (`method`, `path`, `status`, `ms`, `workload`; `host-agent dev` shows them). Off at `info`,
/// where a busy host would write a line per request.
pub const ACCESS_LOG: &str = "weft::access";

async fn route(
    plugin: &HttpPlugin,
    limits: &ServerLimits,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<wasmtime_wasi_http::WasiBody> {
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().host().map(str::to_owned));
    // Only copied when someone listens.
    let access = tracing::enabled!(target: ACCESS_LOG, tracing::Level::DEBUG).then(|| {
        (
            Instant::now(),
            request.method().clone(),
            request.uri().path().to_owned(),
        )
    });
    let (workload, response) = match plugin.router().lookup(host.as_deref()) {
        Some(route) => {
            let workload = access.is_some().then(|| route.workload.clone());
            let response = handle(route, request, limits.body_idle_timeout).await;
            (workload, response)
        }
        None => {
            let response = error_response(
                404,
                &format!(
                    "no workload serves host {}",
                    host.as_deref().unwrap_or("(none)")
                ),
            );
            (None, response)
        }
    };
    if let Some((started, method, path)) = access {
        tracing::debug!(
            target: ACCESS_LOG,
            %method,
            path,
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            workload = workload.as_deref().unwrap_or(""),
            "{method} {path} {}",
            response.status().as_u16()
        );
    }
    response
}

/// Binds the HTTP listener, saying clearly which address failed.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
