//! What a message broker does for `wasmcloud:messaging`, whatever carries the messages.
//! Subjects arrive already scoped to the Workload's namespace (see [`super::subject`]).

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// The largest message body a guest may send or receive (NATS's default `max_payload`).
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: Bytes,
    pub reply_to: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0}")]
    Invalid(String),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("no one is subscribed to {0}")]
    NoResponders(String),
    #[error("{backend} backend: {reason}")]
    Unavailable {
        backend: &'static str,
        reason: String,
    },
}

/// Messages of one subscription, until it is dropped (which unsubscribes).
pub type Subscription = Pin<Box<dyn Stream<Item = Message> + Send>>;

#[async_trait]
pub trait MessagingBackend: Send + Sync + 'static {
    /// The name a Workload picks it by (`config.backend`), reported in the Host's status.
    fn name(&self) -> &'static str;

    /// Subscribes to `subject` (wildcards allowed), in queue group `queue` if given. When this
    /// returns the subscription is live: a message published afterwards is delivered.
    async fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, BackendError>;

    async fn publish(&self, message: Message) -> Result<(), BackendError>;

    /// Publishes to `subject` with a fresh reply subject and waits for the first reply.
    async fn request(
        &self,
        subject: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Message, BackendError>;
}
