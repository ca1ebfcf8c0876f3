//! wasi:http: incoming requests routed to the component that exports
//! `wasi:http/incoming-handler`, and outgoing requests limited by `allowedHosts` and the
//! host's egress rules. The plugin's per-store state is the wasi-http context and the egress
//! policy of the component.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::ProxyIndices;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::iface;
use crate::component_info::ComponentInfo;
use crate::egress::{EgressPolicy, EgressRules};
use crate::instance::Failure;
use crate::plugin::{ComponentBinding, HostPlugin, WitWorld};
use crate::request_body::GuardedBody;
use crate::router::{Route, Router};
use crate::spec::WorkloadSpec;
use crate::store::{Ctx, StateFactory};
use crate::workload::ResolvedWorkload;

pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

pub struct HttpPlugin {
    router: Arc<Router>,
    egress: Arc<EgressRules>,
}

impl HttpPlugin {
    /// `egress` says which addresses outgoing requests may connect to, whatever a component's
    /// `allowedHosts` say.
    pub fn new(router: Arc<Router>, egress: EgressRules) -> Self {
        Self {
            router,
            egress: Arc::new(egress),
        }
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }
}

/// The plugin's state in one store.
struct HttpState {
    ctx: WasiHttpCtx,
    egress: EgressPolicy,
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let view = self.plugin_view::<HttpState>();
        WasiHttpCtxView {
            ctx: &mut view.state.ctx,
            table: view.table,
            hooks: &mut view.state.egress,
        }
    }
}

/// The hosts a workload claims: its `wasi:http` interface config `host`, comma-separated.
pub fn claimed_hosts(spec: &WorkloadSpec) -> Vec<String> {
    spec.interface_config("wasi", "http")
        .and_then(|i| i.config.get("host"))
        .map(|hosts| {
            hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl HostPlugin for HttpPlugin {
    fn id(&self) -> &'static str {
        "wasi-http"
    }

    fn world(&self) -> WitWorld {
        WitWorld {
            imports: vec![iface("wasi:http/types,outgoing-handler@0.2.0")],
            exports: vec![iface("wasi:http/incoming-handler@0.2.0")],
        }
    }

    async fn on_workload_bind(&self, workload: &WorkloadSpec) -> wasmtime::Result<()> {
        let group = workload.http_group();
        for host in claimed_hosts(workload) {
            if let Some(owner) = self.router.claimed_by(&host, &group) {
                wasmtime::bail!("host {host} is already served by workload {owner}");
            }
        }
        Ok(())
    }

    fn add_to_linker(
        &self,
        linker: &mut Linker<Ctx>,
        _component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }

    fn on_component_bind(
        &self,
        binding: &ComponentBinding<'_>,
    ) -> wasmtime::Result<Option<StateFactory>> {
        let egress = EgressPolicy::new(&binding.component.allowed_hosts, self.egress.clone());
        Ok(Some(StateFactory::new(move || HttpState {
            ctx: WasiHttpCtx::new(),
            egress: egress.clone(),
        })))
    }

    async fn on_workload_resolved(&self, workload: &Arc<ResolvedWorkload>) -> wasmtime::Result<()> {
        let handlers = workload.exporting(INCOMING_HANDLER);
        let component = match handlers.as_slice() {
            [] => return Ok(()),
            [one] => (*one).clone(),
            many => wasmtime::bail!(
                "{} components export {INCOMING_HANDLER}; only one may answer HTTP",
                many.len()
            ),
        };
        let indices = Arc::new(ProxyIndices::new(component.instance_pre())?);
        let hosts = claimed_hosts(&workload.spec);
        tracing::info!(workload = %workload.id(), component = &*component.identity.component, ?hosts, "HTTP route ready");
        self.router.insert(
            Route {
                workload: workload.id(),
                group: workload.spec.http_group(),
                component,
                indices,
            },
            &hosts,
        )?;
        Ok(())
    }

    async fn on_workload_unbind(&self, workload_id: &str) -> wasmtime::Result<()> {
        self.router.remove(workload_id);
        Ok(())
    }
}

/// Serves one request on the route's component, in a fresh instance. The guest runs in a task
/// of its own so it can keep streaming the body after the response head is sent; until the
/// head is out, a client that goes away cancels it.
pub async fn handle(
    route: Arc<Route>,
    request: hyper::Request<Incoming>,
    body_idle_timeout: Duration,
) -> hyper::Response<HyperOutgoingBody> {
    let limit = route.component.spec.limits.max_request_body;
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return error_response(
            413,
            &format!(
                "request body is over this component's limit of {limit} bytes (limits.maxRequestBody)"
            ),
        );
    }
    let request = request.map(|body| GuardedBody::new(body, limit, body_idle_timeout));
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let component = route.component.clone();
    let indices = route.indices.clone();
    let task = tokio::spawn(async move {
        component
            .invoke(move |store, instance| {
                Box::pin(async move {
                    let req = store
                        .data_mut()
                        .http()
                        .new_incoming_request(Scheme::Http, request)?;
                    let out = store.data_mut().http().new_response_outparam(sender)?;
                    let proxy = indices.load(&mut *store, &instance)?;
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut *store, req, out)
                        .await
                })
            })
            .await
    });
    let mut task = AbortOnDrop(Some(task));

    match receiver.await {
        Ok(Ok(response)) => {
            task.disarm();
            response
        }
        Ok(Err(code)) => error_response(500, &format!("component failed: {code:?}")),
        // The guest dropped the response without setting it: it trapped, timed out, or forgot.
        Err(_) => {
            let failure = match task.join().await {
                Ok(Err(failure)) => failure,
                Ok(Ok(())) => Failure::Host("component did not set a response".into()),
                Err(err) => Failure::Host(format!("invocation task failed: {err}")),
            };
            failure_response(&failure)
        }
    }
}

/// Aborts the invocation task when the request future is dropped before the response head.
struct AbortOnDrop<T>(Option<tokio::task::JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    fn disarm(&mut self) {
        self.0 = None;
    }

    async fn join(&mut self) -> Result<T, tokio::task::JoinError> {
        let handle = self.0.take().expect("joined once");
        handle.await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

/// What the client is told when an invocation fails; overload says when to come back.
pub fn failure_response(failure: &Failure) -> hyper::Response<HyperOutgoingBody> {
    let status = match failure {
        Failure::Timeout => 504,
        f if f.is_overload() => 503,
        _ => 500,
    };
    let mut response = error_response(status, &failure.to_string());
    if failure.is_overload() {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    response
}

/// A plain-text response written by the host, not the guest.
pub fn error_response(status: u16, message: &str) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(format!("{message}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    hyper::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .expect("a static response is valid")
}
