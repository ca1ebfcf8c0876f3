//! wasmcloud:messaging@0.2.0: components send with `consumer` (`publish`, `request`) and
//! receive by exporting `handler`, over interchangeable brokers (`memory.rs`, `nats.rs`).
//!
//! The Workload's `wasmcloud:messaging` entry configures it: `backend`, `subscriptions`
//! (comma-separated subjects, wildcards allowed), `queue-group` (default: the Workload's name,
//! so its replicas share each message) or `broadcast: "true"` (every replica gets every
//! message). Subjects are scoped to the namespace (see [`subject`]). Each message is one
//! invocation through [`ComponentRuntime::invoke`] with the handler's limits; messages in
//! flight are bounded by the handler's `maxConcurrency` and by the host. There is no automatic
//! reply: a handler publishes to the message's `reply-to`.

pub mod backend;
pub mod memory;
#[cfg(feature = "nats")]
pub mod nats;
pub mod subject;

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tracing::Instrument;
use wasmtime::AsContextMut;
use wasmtime::component::{Access, HasData, Linker};

use super::backend_set::BackendSet;
use super::iface;
use crate::component_info::ComponentInfo;
use crate::error::BackendUnavailable;
use crate::instance::ComponentRuntime;
use crate::plugin::{ComponentBinding, HostPlugin, WitWorld};
use crate::spec::WorkloadSpec;
use crate::store::{Ctx, PluginView, StateFactory};
use crate::workload::ResolvedWorkload;
use backend::{BackendError, MAX_BODY, Message, MessagingBackend, Subscription};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/messaging",
        world: "wasmcloud:messaging/messaging",
        imports: { default: async | trappable },
        // `store`: the handler is called with owned arguments on the store's event loop, so
        // several messages may share a WASI 0.3 instance.
        exports: { default: async | store },
    });
}

use bindings::wasmcloud::messaging::{consumer, types};

/// `wasmcloud:messaging/handler`, the export a Workload's subscribed messages are delivered to.
pub const HANDLER: &str = "wasmcloud:messaging/handler";

/// Subjects one Workload may subscribe to (wildcards cover more).
pub const MAX_SUBSCRIPTIONS: usize = 16;

/// Messages in flight on one host, across Workloads, unless the host says otherwise.
pub const DEFAULT_HOST_IN_FLIGHT: usize = 1024;

/// What a Workload's messaging entry asks for.
struct Settings {
    backend: Arc<dyn MessagingBackend>,
    /// Broker subjects (scoped).
    subscriptions: Vec<String>,
    /// Broker queue group (scoped); `None` when broadcasting.
    queue: Option<String>,
}

/// Serves `wasmcloud:messaging`: components publish and request through the broker their Workload
/// picks, and its handler receives its subscriptions.
pub struct MessagingPlugin {
    backends: BackendSet<dyn MessagingBackend>,
    host_in_flight: Arc<Semaphore>,
    /// The subscription tasks of each Workload, by id.
    running: Mutex<HashMap<String, Vec<AbortHandle>>>,
}

impl MessagingPlugin {
    /// A plugin offering `backends`, `default` for entries that name none, handling at most
    /// `host_in_flight` messages at once on this host.
    pub fn new(
        backends: Vec<Arc<dyn MessagingBackend>>,
        default: &'static str,
        host_in_flight: usize,
    ) -> Self {
        let backends = backends.into_iter().map(|b| (b.name(), b));
        Self {
            backends: BackendSet::new("wasmcloud:messaging", backends, default),
            host_in_flight: Arc::new(Semaphore::new(host_in_flight)),
            running: Mutex::default(),
        }
    }

    fn settings(&self, workload: &WorkloadSpec) -> Result<Settings, String> {
        let empty = BTreeMap::new();
        let config = workload
            .host_interfaces
            .iter()
            .find(|i| {
                i.interface.namespace == "wasmcloud"
                    && i.interface.package == "messaging"
                    && i.name.is_none()
            })
            .map_or(&empty, |i| &i.config);
        let backend = self.backends.pick(config)?;
        let ns = &workload.namespace;
        let subscriptions = config
            .get("subscriptions")
            .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()))
            .into_iter()
            .flatten()
            .map(|s| subject::scoped(ns, s, true).map_err(|e| format!("subscriptions: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if subscriptions.len() > MAX_SUBSCRIPTIONS {
            return Err(format!(
                "subscriptions: {} subjects, at most {MAX_SUBSCRIPTIONS} (use wildcards)",
                subscriptions.len()
            ));
        }
        let broadcast = match config.get("broadcast").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!("broadcast: {other:?} is not \"true\" or \"false\""));
            }
        };
        let queue = match (broadcast, config.get("queue-group")) {
            (true, Some(_)) => return Err("queue-group and broadcast exclude each other".into()),
            (true, None) => None,
            (false, group) => {
                let group = group.map_or(workload.name.as_str(), String::as_str);
                Some(subject::scoped(ns, group, false).map_err(|e| format!("queue-group: {e}"))?)
            }
        };
        Ok(Settings {
            backend,
            subscriptions,
            queue,
        })
    }

    fn replace_tasks(&self, workload: &str, tasks: Vec<AbortHandle>) {
        let old = self.running.lock().insert(workload.to_string(), tasks);
        old.into_iter().flatten().for_each(|task| task.abort());
    }
}

#[async_trait::async_trait]
impl HostPlugin for MessagingPlugin {
    fn id(&self) -> &'static str {
        "wasmcloud-messaging"
    }

    fn world(&self) -> WitWorld {
        WitWorld {
            imports: vec![iface("wasmcloud:messaging/consumer,types@0.2.0")],
            exports: vec![iface("wasmcloud:messaging/handler@0.2.0")],
        }
    }

    fn backends(&self) -> Vec<&'static str> {
        self.backends.names()
    }

    async fn on_workload_bind(&self, workload: &WorkloadSpec) -> wasmtime::Result<()> {
        self.settings(workload).map_err(wasmtime::Error::msg)?;
        Ok(())
    }

    fn add_to_linker(
        &self,
        linker: &mut Linker<Ctx>,
        _component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        bindings::Messaging::add_to_linker::<Ctx, Consumer>(linker, |ctx| {
            ctx.plugin_view::<MessagingState>()
        })
    }

    fn on_component_bind(
        &self,
        binding: &ComponentBinding<'_>,
    ) -> wasmtime::Result<Option<StateFactory>> {
        let backend = self
            .settings(binding.workload)
            .map_err(wasmtime::Error::msg)?
            .backend;
        let namespace: Arc<str> = binding.workload.namespace.as_str().into();
        let max_wait = binding.component.limits.timeout;
        Ok(Some(StateFactory::new(move || MessagingState {
            namespace: namespace.clone(),
            backend: backend.clone(),
            max_wait,
            replies: Vec::new(),
        })))
    }

    async fn on_workload_resolved(&self, workload: &Arc<ResolvedWorkload>) -> wasmtime::Result<()> {
        let settings = self
            .settings(&workload.spec)
            .map_err(wasmtime::Error::msg)?;
        let handlers = workload.exporting(HANDLER);
        let handler = match (settings.subscriptions.is_empty(), handlers.as_slice()) {
            (true, []) => return Ok(()),
            (true, [_, ..]) => {
                tracing::warn!(workload = %workload.id(), "a component exports {HANDLER} but the Workload subscribes to nothing (config subscriptions)");
                return Ok(());
            }
            (false, []) => {
                wasmtime::bail!("config subscriptions is set but no component exports {HANDLER}")
            }
            (false, [one]) => (*one).clone(),
            (false, many) => wasmtime::bail!(
                "{} components export {HANDLER}; only one may handle the Workload's subscriptions",
                many.len()
            ),
        };
        let indices = Arc::new(bindings::MessagingIndices::new(handler.instance_pre())?);
        // Every subscription is live before the Workload is reported ready; if one fails,
        // those already made are dropped (unsubscribed) with it.
        let mut subscriptions = Vec::new();
        for subject in &settings.subscriptions {
            let subscription = match settings
                .backend
                .subscribe(subject, settings.queue.as_deref())
                .await
            {
                Ok(subscription) => subscription,
                Err(BackendError::Unavailable { backend, reason }) => {
                    return Err(wasmtime::Error::new(BackendUnavailable {
                        backend: format!("wasmcloud:messaging {backend}"),
                        reason: format!("subscribing to {subject}: {reason}"),
                    }));
                }
                Err(e) => wasmtime::bail!("subscribing to {subject}: {e}"),
            };
            subscriptions.push(subscription);
        }
        tracing::info!(workload = %workload.id(), subjects = ?settings.subscriptions, queue = ?settings.queue, backend = settings.backend.name(), "subscriptions live");
        let handler_slots = Arc::new(Semaphore::new(handler.spec.limits.max_concurrency as usize));
        let tasks = subscriptions
            .into_iter()
            .map(|subscription| {
                let deliver = Delivery {
                    handler: handler.clone(),
                    indices: indices.clone(),
                    namespace: workload.spec.namespace.as_str().into(),
                    host_slots: self.host_in_flight.clone(),
                    handler_slots: handler_slots.clone(),
                };
                tokio::spawn(deliver.serve(subscription)).abort_handle()
            })
            .collect();
        self.replace_tasks(&workload.id(), tasks);
        Ok(())
    }

    async fn on_workload_unbind(&self, workload_id: &str) -> wasmtime::Result<()> {
        let tasks = self.running.lock().remove(workload_id);
        tasks.into_iter().flatten().for_each(|task| task.abort());
        Ok(())
    }
}

/// Hands a subscription's messages to the handler, one invocation each.
struct Delivery {
    handler: Arc<ComponentRuntime>,
    indices: Arc<bindings::MessagingIndices>,
    namespace: Arc<str>,
    host_slots: Arc<Semaphore>,
    handler_slots: Arc<Semaphore>,
}

impl Delivery {
    /// Takes the next message only when the handler has room for it, so a slow handler slows
    /// its subscription down instead of piling up invocations; a host slot is taken only for
    /// a message in hand, so idle subscriptions hold none of the host's.
    async fn serve(self, mut subscription: Subscription) {
        let this = Arc::new(self);
        loop {
            let Ok(handler) = this.handler_slots.clone().acquire_owned().await else {
                return;
            };
            let Some(message) = subscription.next().await else {
                tracing::warn!(
                    component = &*this.handler.identity.component,
                    "subscription ended"
                );
                return;
            };
            let Ok(host) = this.host_slots.clone().acquire_owned().await else {
                return;
            };
            let this = this.clone();
            tokio::spawn(async move {
                this.handle(message).await;
                drop((host, handler));
            });
        }
    }

    async fn handle(&self, message: Message) {
        let subject = subject::unscoped(&self.namespace, &message.subject);
        let span = crate::trace_context::consumer_span(&subject, &message.headers);
        self.handle_in(subject, message).instrument(span).await
    }

    async fn handle_in(&self, subject: String, message: Message) {
        let message = types::BrokerMessage {
            subject,
            body: message.body.to_vec(),
            reply_to: message.reply_to,
        };
        let indices = self.indices.clone();
        let outcome = self
            .handler
            .invoke("wasmcloud:messaging/handler.handle-message", move |guest| {
                Box::pin(async move {
                    let reply = message.reply_to.clone();
                    let grant = |access: &mut Access<'_, Ctx>, on: bool| {
                        if let (Some(reply), Some(state)) =
                            (&reply, access.data_mut().try_state::<MessagingState>())
                        {
                            state.grant(reply, on);
                        }
                    };
                    let accessor = guest.accessor;
                    let started = accessor.with(|mut access| {
                        grant(&mut access, true);
                        let guest_fns = indices.load(&mut access, &guest.instance)?;
                        let handle = guest_fns
                            .wasmcloud_messaging_handler()
                            .func_handle_message();
                        let call =
                            handle.start_call_concurrent(access.as_context_mut(), (message,))?;
                        wasmtime::Result::<_>::Ok((handle, call))
                    });
                    let handled = match started {
                        Ok((handle, call)) => {
                            guest.track(call.task());
                            handle
                                .finish_call_concurrent(accessor, call)
                                .await
                                .map(|(r,)| r)
                        }
                        Err(e) => Err(e),
                    };
                    // The reply subject is granted for this message only: an instance kept
                    // warm in a pool, or serving other messages at once, keeps no grant beyond it.
                    accessor.with(|mut access| grant(&mut access, false));
                    handled
                })
            })
            .await;
        // A failed invocation is logged and counted by `invoke`; a handler's own error here.
        if let Ok(Err(reason)) = outcome {
            tracing::warn!(
                workload = &*self.handler.identity.workload,
                component = &*self.handler.identity.component,
                "handle-message returned an error: {reason}"
            );
        }
    }
}

/// The plugin's state in one store.
struct MessagingState {
    namespace: Arc<str>,
    backend: Arc<dyn MessagingBackend>,
    /// A request waits no longer than the component's own timeout.
    max_wait: Duration,
    /// The reply subjects of the messages being handled: published to as they are.
    replies: Vec<String>,
}

impl MessagingState {
    /// Grants publishing to a message's reply subject while it is handled, or takes the grant
    /// back (one grant per message, so concurrent messages with one reply subject keep theirs).
    /// Only a requester's inbox (`_INBOX.…`) or a subject of the namespace's own is granted: a
    /// message whose reply-to names another namespace's subject (sent by a NATS client that can
    /// reach this one) cannot make the handler publish there; its reply stays in the namespace.
    fn grant(&mut self, reply: &str, on: bool) {
        let own = reply
            .strip_prefix(&*self.namespace)
            .is_some_and(|rest| rest.starts_with('.'));
        if !(reply.starts_with("_INBOX.") || own) {
            return;
        }
        if on {
            self.replies.push(reply.to_string());
        } else if let Some(i) = self.replies.iter().position(|r| r == reply) {
            self.replies.swap_remove(i);
        }
    }

    fn broker_subject(&self, subject: &str) -> Result<String, BackendError> {
        if self.replies.iter().any(|r| r == subject) {
            return Ok(subject.to_string());
        }
        subject::scoped(&self.namespace, subject, false)
    }
}

struct Consumer;

impl HasData for Consumer {
    type Data<'a> = PluginView<'a, MessagingState>;
}

fn check_body(body: &[u8]) -> Result<(), BackendError> {
    if body.len() > MAX_BODY {
        return Err(BackendError::Invalid(format!(
            "message body of {} bytes is over the limit of {MAX_BODY}",
            body.len()
        )));
    }
    Ok(())
}

impl types::Host for PluginView<'_, MessagingState> {}

/// The span of a guest's `publish` or `request` (`op`) to `subject` as the guest named it: a
/// child of its invocation, and the parent of the handler's (through the message's headers).
fn client_span(op: &'static str, subject: &str, backend: &'static str) -> tracing::Span {
    tracing::info_span!(
        "wasmcloud:messaging",
        otel.name = %format_args!("wasmcloud:messaging {op}"),
        otel.kind = "producer",
        messaging.destination.name = subject,
        backend,
    )
}

impl consumer::Host for PluginView<'_, MessagingState> {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<types::BrokerMessage, String>> {
        let state = &*self.state;
        let span = client_span("request", &subject, state.backend.name());
        let asked = async {
            check_body(&body)?;
            let mut message = Message::new(state.broker_subject(&subject)?, body);
            crate::trace_context::inject_message(&mut message.headers);
            let timeout = Duration::from_millis(timeout_ms.into()).min(state.max_wait);
            state.backend.request(message, timeout).await
        };
        Ok(asked
            .instrument(span)
            .await
            .map(|reply| types::BrokerMessage {
                subject: subject::unscoped(&state.namespace, &reply.subject),
                body: reply.body.to_vec(),
                reply_to: reply.reply_to,
            })
            .map_err(|e| e.to_string()))
    }

    async fn publish(&mut self, msg: types::BrokerMessage) -> wasmtime::Result<Result<(), String>> {
        let state = &*self.state;
        let span = client_span("publish", &msg.subject, state.backend.name());
        let sent = async {
            check_body(&msg.body)?;
            let mut message = Message::new(state.broker_subject(&msg.subject)?, msg.body);
            message.reply_to = msg
                .reply_to
                .map(|r| subject::scoped(&state.namespace, &r, false))
                .transpose()?;
            crate::trace_context::inject_message(&mut message.headers);
            state.backend.publish(message).await
        };
        Ok(sent.instrument(span).await.map_err(|e| e.to_string()))
    }
}
