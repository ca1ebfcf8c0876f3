//! What a message broker does for `wasmcloud:messaging`, whatever carries the messages.
//! Subjects arrive already scoped to the Workload's namespace (see [`super::subject`]).

use std::collections::HashMap;
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
    /// Set by the host, never by guests (`wasmcloud:messaging` has no headers): the W3C trace
    /// context of the invocation that sent it, so its handler's invocation joins the trace.
    pub headers: HashMap<String, String>,
}

impl Message {
    /// A message to `subject`, wanting no reply, without headers.
    pub fn new(subject: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self {
            subject: subject.into(),
            body: body.into(),
            reply_to: None,
            headers: HashMap::new(),
        }
    }
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

    /// Publishes `message` with a fresh reply subject of the broker's (its `reply_to` is not
    /// used) and waits for the first reply.
    async fn request(&self, message: Message, timeout: Duration) -> Result<Message, BackendError>;
}
