//! What a message broker does for `wasmcloud:messaging`, whatever carries the messages.
//! Subjects arrive already scoped to the Workload's namespace (see [`super::subject`]).

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// The largest message body a guest may send or receive (NATS's default `max_payload`).
pub const MAX_BODY: usize = 1024 * 1024;

/// A message as a broker carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The subject, as the broker knows it (scoped to the namespace).
    pub subject: String,
    /// The payload, at most [`MAX_BODY`] bytes.
    pub body: Bytes,
    /// Where a reply should go, if the sender wants one.
    pub reply_to: Option<String>,
}

/// Why a broker could not do what was asked; the guest gets it as an error string.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The request is refused (a bad subject, a body over [`MAX_BODY`]); the message says why.
    #[error("{0}")]
    Invalid(String),
    /// No reply to a request came within the timeout it holds.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// A request went to a subject no one is subscribed to; holds the subject.
    #[error("no one is subscribed to {0}")]
    NoResponders(String),
    /// The broker failed, e.g. its server is unreachable.
    #[error("{backend} backend: {reason}")]
    Unavailable {
        /// The failing backend's name.
        backend: &'static str,
        /// What failed, as the backend reported it.
        reason: String,
    },
}

/// Messages of one subscription, until it is dropped (which unsubscribes).
pub type Subscription = Pin<Box<dyn Stream<Item = Message> + Send>>;

/// A message broker for `wasmcloud:messaging`; implement it to offer another through
/// [`Backends::messaging`](crate::plugins::Backends::messaging).
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

    /// Sends `message` to whoever is subscribed to its subject now; having none is not an error.
    async fn publish(&self, message: Message) -> Result<(), BackendError>;

    /// Publishes to `subject` with a fresh reply subject and waits for the first reply.
    async fn request(
        &self,
        subject: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Message, BackendError>;
}
