//! wasi:http: incoming requests routed to the component that exports
//! `wasi:http/incoming-handler`, and outgoing requests limited by `allowedHosts`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use wasmtime::component::Linker;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::iface;
use crate::instance::Failure;
use crate::metrics::RuntimeMetrics;
use crate::plugin::{ComponentBinding, HostPlugin, WitWorld};
use crate::router::{Route, Router};
use crate::spec::WorkloadSpec;
use crate::store::Ctx;
use crate::workload::ResolvedWorkload;

pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

pub struct HttpPlugin {
    router: Arc<Router>,
    metrics: RuntimeMetrics,
}

impl HttpPlugin {
    pub fn new(router: Arc<Router>, metrics: RuntimeMetrics) -> Self {
        Self { router, metrics }
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
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
        let id = workload.id();
        for host in claimed_hosts(workload) {
            if let Some(owner) = self.router.claimed_by(&host, &id) {
                wasmtime::bail!("host {host} is already served by workload {owner}");
            }
        }
        Ok(())
    }

    fn on_component_bind(
        &self,
        linker: &mut Linker<Ctx>,
        _binding: &ComponentBinding<'_>,
    ) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
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
        let proxy = ProxyPre::new(component.instance_pre().clone())?;
        let hosts = claimed_hosts(&workload.spec);
        tracing::info!(workload = %workload.id(), component = &*component.identity.component, ?hosts, "HTTP route ready");
        self.router.insert(
            Route {
                workload: workload.id(),
                component,
                proxy,
            },
            &hosts,
        );
        Ok(())
    }

    async fn on_workload_unbind(&self, workload_id: &str) -> wasmtime::Result<()> {
        self.router.remove(workload_id);
        Ok(())
    }
}

/// Serves one request on the route's component, in a fresh instance.
pub async fn handle(
    route: Arc<Route>,
    metrics: &RuntimeMetrics,
    request: hyper::Request<Incoming>,
) -> hyper::Response<HyperOutgoingBody> {
    let component = route.component.clone();
    let id = &component.identity;
    let queued = metrics.queued(id);
    let permit = component.acquire().await;
    drop(queued);
    let permit = match permit {
        Ok(permit) => permit,
        Err(failure) => {
            metrics.count_refused(id, failure.label());
            log_failure(id, &failure);
            return error_response(status_for(&failure), &failure.to_string());
        }
    };
    let invocation = metrics.start_invocation(id);
    let mut store = match component.new_store() {
        Ok(store) => store,
        Err(failure) => return fail(invocation, id, failure),
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let prepared = (|| {
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        wasmtime::Result::<_>::Ok((req, out))
    })();
    let (req, out) = match prepared {
        Ok(pair) => pair,
        Err(err) => return fail(invocation, id, Failure::Host(format!("{err:#}"))),
    };

    // The guest runs in its own task so it can keep streaming the body after the response head
    // is sent; the task owns the store, the concurrency slot and the metrics until it ends.
    let proxy = route.proxy.clone();
    let task = tokio::spawn(async move {
        let _permit = permit;
        let start = Instant::now();
        let result = async {
            let proxy = proxy.instantiate_async(&mut store).await?;
            invocation.instantiated(start.elapsed());
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        }
        .await;
        let failure = result
            .err()
            .map(|err| Failure::classify(&err, store.data().limiter.memory_refused));
        invocation.finish(failure.as_ref().map_or("ok", Failure::label));
        failure
    });

    match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => error_response(500, &format!("component failed: {code:?}")),
        // The guest dropped the response without setting it: it trapped, timed out, or forgot.
        Err(_) => {
            let failure = match task.await {
                Ok(Some(failure)) => failure,
                Ok(None) => Failure::Host("component did not set a response".into()),
                Err(err) => Failure::Host(format!("invocation task failed: {err}")),
            };
            log_failure(id, &failure);
            error_response(status_for(&failure), &failure.to_string())
        }
    }
}

fn fail(
    invocation: crate::metrics::Invocation,
    id: &crate::store::Identity,
    failure: Failure,
) -> hyper::Response<HyperOutgoingBody> {
    invocation.finish(failure.label());
    log_failure(id, &failure);
    error_response(status_for(&failure), &failure.to_string())
}

fn log_failure(id: &crate::store::Identity, failure: &Failure) {
    tracing::warn!(
        workload = &*id.workload,
        component = &*id.component,
        outcome = failure.label(),
        "invocation failed: {failure}"
    );
}

fn status_for(failure: &Failure) -> u16 {
    match failure {
        Failure::Timeout | Failure::Busy => 503,
        _ => 500,
    }
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
