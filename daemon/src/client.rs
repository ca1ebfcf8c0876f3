//! The Kubernetes API client: kube's default stack from the in-cluster config or `KUBECONFIG`,
//! with a bound on how long a request may wait for the API server to start answering.

use std::time::Duration;

use kube::client::ClientBuilder;

/// How long a request may wait for its response headers. A watch gets its headers as soon as
/// it starts, so this bounds only requests that never got an answer. kube sets no read
/// timeout: after a network partition heals, a request sent during it may wait forever on a
/// connection that will never answer, and a watch stuck that way leaves its cache stale for
/// good.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no Kubernetes API configuration (in-cluster or KUBECONFIG): {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("building the Kubernetes API client: {0}")]
    Client(#[from] kube::Error),
}

/// Connects as the in-cluster ServiceAccount, or as `KUBECONFIG` says.
pub async fn connect() -> Result<kube::Client, ConnectError> {
    let config = kube::Config::infer().await?;
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&tower::timeout::TimeoutLayer::new(RESPONSE_TIMEOUT))
        .build())
}
