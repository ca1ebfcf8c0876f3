//! The NATS backend: core NATS subjects and queue groups, so Workloads on every host sharing
//! the server message each other and a Workload's replicas share its subscriptions.
//!
//! One client per host, shared with the other NATS-backed plugins (see
//! [`crate::plugins::nats::NatsConnection`]). It reconnects by itself after an outage; meanwhile
//! guests get error values and the host carries on.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::backend::{BackendError, Message, MessagingBackend, Subscription};
use crate::plugins::nats::NatsConnection;

/// A broker over core NATS, reaching Workloads on every host sharing the server; the `nats`
/// backend.
pub struct NatsMessaging {
    nats: NatsConnection,
}

impl NatsMessaging {
    /// A broker over the server behind `nats`; nothing connects until first use.
    pub fn new(nats: NatsConnection) -> Self {
        Self { nats }
    }

    fn unavailable(&self, err: impl std::fmt::Display) -> BackendError {
        BackendError::Unavailable {
            backend: "nats",
            reason: self.nats.describe(err),
        }
    }
}

#[async_trait]
impl MessagingBackend for NatsMessaging {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, BackendError> {
        let client = self.nats.client().await.map_err(|e| self.unavailable(e))?;
        let subscriber = match queue {
            Some(queue) => {
                client
                    .queue_subscribe(subject.to_string(), queue.to_string())
                    .await
            }
            None => client.subscribe(subject.to_string()).await,
        }
        .map_err(|e| self.unavailable(e))?;
        // Live only once the server has it: the flush's PONG comes after the SUB.
        self.nats
            .flush(&client)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(Box::pin(subscriber.map(received)))
    }

    async fn publish(&self, message: Message) -> Result<(), BackendError> {
        let client = self.nats.client().await.map_err(|e| self.unavailable(e))?;
        let headers = nats_headers(&message.headers);
        match message.reply_to {
            Some(reply) => {
                client
                    .publish_with_reply_and_headers(message.subject, reply, headers, message.body)
                    .await
            }
            None => {
                client
                    .publish_with_headers(message.subject, headers, message.body)
                    .await
            }
        }
        .map_err(|e| self.unavailable(e))
    }

    async fn request(&self, message: Message, timeout: Duration) -> Result<Message, BackendError> {
        use async_nats::RequestErrorKind;
        let client = self.nats.client().await.map_err(|e| self.unavailable(e))?;
        let request = async_nats::Request::new()
            .payload(message.body)
            .headers(nats_headers(&message.headers))
            .timeout(Some(timeout));
        match client.send_request(message.subject.clone(), request).await {
            Ok(reply) => Ok(received(reply)),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::TimedOut => BackendError::Timeout(timeout),
                RequestErrorKind::NoResponders => BackendError::NoResponders(message.subject),
                _ => self.unavailable(e),
            }),
        }
    }
}

/// A NATS message as the plugin sees it: its headers kept (they carry the trace context).
fn received(m: async_nats::Message) -> Message {
    let headers = m
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .filter_map(|(name, values)| Some((name.to_string(), values.first()?.as_str().to_owned())))
        .collect();
    Message {
        subject: m.subject.to_string(),
        body: m.payload,
        reply_to: m.reply.map(|r| r.to_string()),
        headers,
    }
}

fn nats_headers(headers: &HashMap<String, String>) -> async_nats::HeaderMap {
    let mut map = async_nats::HeaderMap::new();
    for (name, value) in headers {
        map.insert(name.as_str(), value.as_str());
    }
    map
}
