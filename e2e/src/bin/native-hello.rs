//! A native hello server for `make bench`: hyper and tokio, as the host-agent's own HTTP server
//! uses them, answering every request with a fixed body. The physical limit on this machine for
//! what a hello Workload could reach. `?ms=N` first awaits an N ms timer, as `sleep-p3` does,
//! for the slow-I/O comparison.
//!
//!     native-hello 127.0.0.1:18083

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18083".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                let ms = request
                    .uri()
                    .query()
                    .and_then(|q| q.strip_prefix("ms="))
                    .and_then(|v| v.parse().ok());
                if let Some(ms) = ms {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"Hello from native hyper!\n",
                ))))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
