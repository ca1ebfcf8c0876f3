//! One connection to a NATS server, shared by the host's NATS-backed plugins (keyvalue,
//! blobstore, messaging). Made on first use, so a host starts while NATS is down and its
//! Workloads that need NATS fail alone, with the reason; once made, the client reconnects by
//! itself after an outage.

use std::time::Duration;

use async_nats::Client;
use tokio::sync::Mutex;

/// How long connecting, or a flush waiting for the server's answer, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages buffered per subscription before the client drops them for it (slow consumer).
const SUBSCRIPTION_CAPACITY: usize = 1024;
const CLIENT_CAPACITY: usize = 64;

/// One client of a NATS server, made on first use and shared (cheaply cloned) by the NATS backends.
#[derive(Clone)]
pub struct NatsConnection {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    url: String,
    /// The server's address for messages, without credentials.
    shown: String,
    client: Mutex<Option<Client>>,
}

/// Why a NATS connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The URL does not parse, or is not `nats://` or `tls://` with a host.
    #[error("invalid NATS URL: {0}")]
    InvalidUrl(String),
}

impl NatsConnection {
    /// `url`: `nats://[user:password@|token@]host:port`.
    pub fn new(url: &str) -> Result<Self, NatsError> {
        let parsed = url::Url::parse(url).map_err(|e| NatsError::InvalidUrl(e.to_string()))?;
        if !matches!(parsed.scheme(), "nats" | "tls") || parsed.host_str().is_none() {
            return Err(NatsError::InvalidUrl(format!(
                "{}://…: use nats://host:port",
                parsed.scheme()
            )));
        }
        let shown = format!(
            "{}:{}",
            parsed.host_str().unwrap_or_default(),
            parsed.port().unwrap_or(4222)
        );
        Ok(Self {
            inner: std::sync::Arc::new(Inner {
                url: url.to_string(),
                shown,
                client: Mutex::new(None),
            }),
        })
    }

    /// `<host:port>: <err>`, for error values and status.
    pub fn describe(&self, err: impl std::fmt::Display) -> String {
        format!("{}: {err}", self.inner.shown)
    }

    /// The shared client, connecting first if there is none yet.
    pub async fn client(&self) -> Result<Client, async_nats::ConnectError> {
        let mut client = self.inner.client.lock().await;
        if let Some(client) = &*client {
            return Ok(client.clone());
        }
        let made = async_nats::ConnectOptions::new()
            .name("weft-host-agent")
            .connection_timeout(CONNECT_TIMEOUT)
            // Outgoing messages queued in the client, at most: a blob being stored is published
            // in 128 KiB chunks, and a short queue makes the writer wait for the socket instead
            // of queueing the whole object in memory.
            .client_capacity(CLIENT_CAPACITY)
            // Messages waiting for one subscription's handler, at most (the default is 65,536:
            // 64 GiB of 1 MiB messages for one slow tenant); past it the client drops them for
            // that subscription alone, as a slow consumer. As many as the memory broker keeps.
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .event_callback(|event| async move {
                tracing::info!(%event, "nats connection");
            })
            .connect(self.inner.url.as_str())
            .await?;
        *client = Some(made.clone());
        Ok(made)
    }

    /// JetStream over the shared client (key-value buckets, object stores).
    pub async fn jetstream(
        &self,
    ) -> Result<async_nats::jetstream::Context, async_nats::ConnectError> {
        Ok(async_nats::jetstream::new(self.client().await?))
    }

    /// Waits until the server has seen everything sent so far.
    pub async fn flush(&self, client: &Client) -> Result<(), String> {
        match tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the server did not answer within {FLUSH_TIMEOUT:?}"
            )),
        }
    }
}

/// The JetStream bucket (key-value or object store) of a Weft bucket or container:
/// `weft_<namespace>_<name>` with the name's `_` written `__` and `.` written `_d`, so the
/// mapping is one-to-one (namespaces hold no `_`) and only `[A-Za-z0-9_-]` appear.
pub fn jetstream_name(namespace: &str, name: &str) -> String {
    let mut physical = format!("weft_{namespace}_");
    for c in name.chars() {
        match c {
            '_' => physical.push_str("__"),
            '.' => physical.push_str("_d"),
            c => physical.push(c),
        }
    }
    physical
}
