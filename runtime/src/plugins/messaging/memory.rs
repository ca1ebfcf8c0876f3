//! The in-process broker, for development and `host-agent run`: the Workloads of one host
//! message each other; nothing is kept. A subscriber that falls behind by more than
//! [`BACKLOG`] messages or [`BACKLOG_BYTES`] of bodies loses the newest ones (like a slow NATS
//! consumer), so no publisher can fill the host's memory.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::backend::{BackendError, Message, MessagingBackend, Subscription};
use super::subject::matches;

/// Messages waiting for one subscriber, at most.
pub const BACKLOG: usize = 1024;
/// Bytes of bodies waiting for one subscriber, at most.
pub const BACKLOG_BYTES: usize = 8 << 20;

/// The in-process broker, reaching only this host's Workloads; the `memory` backend every host has.
#[derive(Default)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    subscribers: Mutex<Vec<Subscriber>>,
    next_id: AtomicU64,
    /// Turns in queue groups, so members take messages in turn.
    turn: AtomicU64,
}

struct Subscriber {
    id: u64,
    pattern: String,
    queue: Option<String>,
    sender: mpsc::Sender<Message>,
    /// Bytes of the bodies waiting in `sender`'s channel.
    waiting: Arc<AtomicUsize>,
}

impl Subscriber {
    /// Queues `message` if the subscriber has room for it.
    fn offer(&self, message: &Message) -> bool {
        let len = message.body.len();
        let room = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w + len <= BACKLOG_BYTES).then_some(w + len)
            })
            .is_ok();
        if room && self.sender.try_send(message.clone()).is_ok() {
            return true;
        }
        if room {
            self.waiting.fetch_sub(len, Ordering::AcqRel);
        }
        false
    }
}

/// Unsubscribes when the subscription's stream is dropped.
struct Unsubscribe {
    inner: Weak<Inner>,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.subscribers.lock().retain(|s| s.id != self.id);
        }
    }
}

impl Inner {
    fn subscribe(self: &Arc<Self>, pattern: &str, queue: Option<&str>) -> Subscription {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let waiting = Arc::new(AtomicUsize::new(0));
        self.subscribers.lock().push(Subscriber {
            id,
            pattern: pattern.to_string(),
            queue: queue.map(String::from),
            sender,
            waiting: waiting.clone(),
        });
        let guard = Unsubscribe {
            inner: Arc::downgrade(self),
            id,
        };
        Box::pin(futures::stream::unfold(
            (receiver, guard, waiting),
            |(mut receiver, guard, waiting)| async move {
                let message = receiver.recv().await?;
                waiting.fetch_sub(message.body.len(), Ordering::AcqRel);
                Some((message, (receiver, guard, waiting)))
            },
        ))
    }

    /// Delivers to every plain subscriber and to one member of each queue group; returns
    /// how many took it.
    fn publish(&self, message: Message) -> usize {
        let subscribers = self.subscribers.lock();
        let matching: Vec<&Subscriber> = subscribers
            .iter()
            .filter(|s| matches(&s.pattern, &message.subject))
            .collect();
        let mut chosen: Vec<&Subscriber> = matching
            .iter()
            .copied()
            .filter(|s| s.queue.is_none())
            .collect();
        let mut groups: Vec<&str> = matching.iter().filter_map(|s| s.queue.as_deref()).collect();
        groups.sort_unstable();
        groups.dedup();
        for group in groups {
            let members: Vec<&Subscriber> = matching
                .iter()
                .copied()
                .filter(|s| s.queue.as_deref() == Some(group))
                .collect();
            let turn = self.turn.fetch_add(1, Ordering::Relaxed) as usize;
            chosen.push(members[turn % members.len()]);
        }
        chosen
            .into_iter()
            .filter(|s| match s.offer(&message) {
                true => true,
                false => {
                    tracing::warn!(subject = %message.subject, "memory broker: subscriber is {BACKLOG} messages or {BACKLOG_BYTES} bytes behind; message dropped");
                    false
                }
            })
            .count()
    }
}

#[async_trait]
impl MessagingBackend for MemoryBroker {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, BackendError> {
        Ok(self.inner.subscribe(subject, queue))
    }

    async fn publish(&self, message: Message) -> Result<(), BackendError> {
        self.inner.publish(message);
        Ok(())
    }

    async fn request(&self, message: Message, timeout: Duration) -> Result<Message, BackendError> {
        use futures::StreamExt;
        let inbox = format!(
            "_INBOX.{}",
            self.inner.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let mut replies = self.inner.subscribe(&inbox, None);
        let subject = message.subject.clone();
        let taken = self.inner.publish(Message {
            reply_to: Some(inbox),
            ..message
        });
        if taken == 0 {
            return Err(BackendError::NoResponders(subject));
        }
        tokio::time::timeout(timeout, replies.next())
            .await
            .ok()
            .flatten()
            .ok_or(BackendError::Timeout(timeout))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures::StreamExt;

    use super::*;

    fn message(subject: &str) -> Message {
        Message::new(subject, Bytes::from_static(b"x"))
    }

    #[tokio::test]
    async fn queue_groups_share_and_plain_subscribers_all_receive() {
        let broker = MemoryBroker::default();
        let mut a = broker.subscribe("ns.work", Some("g")).await.unwrap();
        let mut b = broker.subscribe("ns.work", Some("g")).await.unwrap();
        let mut all = broker.subscribe("ns.>", None).await.unwrap();
        for _ in 0..10 {
            broker.publish(message("ns.work")).await.unwrap();
        }
        for _ in 0..10 {
            assert!(all.next().await.is_some());
        }
        let mut group = Vec::new();
        for sub in [&mut a, &mut b] {
            let mut taken = 0;
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(50), sub.next()).await
            {
                taken += 1;
            }
            group.push(taken);
        }
        assert_eq!(group, [5, 5], "each message once within the group, in turn");
    }

    #[tokio::test]
    async fn dropping_a_subscription_unsubscribes() {
        let broker = MemoryBroker::default();
        let sub = broker.subscribe("ns.a", None).await.unwrap();
        drop(sub);
        assert_eq!(broker.inner.publish(message("ns.a")), 0);
        let err = broker
            .request(
                Message::new("ns.a", Bytes::new()),
                Duration::from_millis(10),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, BackendError::NoResponders(_)));
    }

    #[tokio::test]
    async fn a_subscriber_that_does_not_read_holds_at_most_its_backlog_in_bytes() {
        let broker = Arc::new(Inner::default());
        let mut slow = broker.subscribe("s", None);
        let body = Bytes::from(vec![0u8; 1 << 20]);
        let taken = (0..20)
            .map(|_| broker.publish(Message::new("s", body.clone())))
            .sum::<usize>();
        assert_eq!(
            taken,
            BACKLOG_BYTES >> 20,
            "eight 1 MiB messages, not twenty"
        );
        // Reading makes room again.
        slow.next().await.unwrap();
        let taken = broker.publish(Message::new("s", body));
        assert_eq!(taken, 1);
    }
}
