//! The NATS backend: core NATS subjects and queue groups, so Workloads on every host sharing
//! the server message each other and a Workload's replicas share its subscriptions.
//!
//! One client per host, shared with the other NATS-backed plugins (see
//! [`crate::plugins::nats::NatsConnection`]). It reconnects by itself after an outage; meanwhile
//! guests get error values and the host carries on.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
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
        Ok(Box::pin(subscriber.map(|m| Message {
            subject: m.subject.to_string(),
            body: m.payload,
            reply_to: m.reply.map(|r| r.to_string()),
        })))
    }

    async fn publish(&self, message: Message) -> Result<(), BackendError> {
        let client = self.nats.client().await.map_err(|e| self.unavailable(e))?;
        match message.reply_to {
            Some(reply) => {
                client
                    .publish_with_reply(message.subject, reply, message.body)
                    .await
            }
            None => client.publish(message.subject, message.body).await,
        }
        .map_err(|e| self.unavailable(e))
    }

    async fn request(
        &self,
        subject: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Message, BackendError> {
        use async_nats::RequestErrorKind;
        let client = self.nats.client().await.map_err(|e| self.unavailable(e))?;
        let request = async_nats::Request::new()
            .payload(body)
            .timeout(Some(timeout));
        match client.send_request(subject.to_string(), request).await {
            Ok(m) => Ok(Message {
                subject: m.subject.to_string(),
                body: m.payload,
                reply_to: m.reply.map(|r| r.to_string()),
            }),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::TimedOut => BackendError::Timeout(timeout),
                RequestErrorKind::NoResponders => BackendError::NoResponders(subject.to_string()),
                _ => self.unavailable(e),
            }),
        }
    }
}
