//! wasi:http, 0.2 and 0.3: incoming requests routed to the component that exports
//! `wasi:http/incoming-handler@0.2` or `wasi:http/handler@0.3`, and outgoing requests (0.2's
//! `outgoing-handler`, 0.3's `client`) limited by `allowedHosts` and the host's egress rules.
//! The plugin's per-store state is the wasi-http context and the egress policy of the component.

mod export;
mod handle;
mod request_body;
mod response_body;

use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use self::export::{HANDLER, HttpExport, INCOMING_HANDLER};
pub use self::handle::{error_response, failure_response, handle};
use super::iface;
use crate::component_info::ComponentInfo;
use crate::egress::{EgressPolicy, EgressRules};
use crate::plugin::{ComponentBinding, HostPlugin, WitWorld};
use crate::router::{Route, Router};
use crate::spec::WorkloadSpec;
use crate::store::{Ctx, StateFactory};
use crate::workload::ResolvedWorkload;

/// Serves `wasi:http` 0.2 and 0.3: routes incoming requests to the Workload claiming their host,
/// and lets outgoing ones through the egress rules.
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

    /// The routes by `Host` header, for the host's HTTP server to look requests up in.
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
            imports: vec![
                iface("wasi:http/types,outgoing-handler@0.2.0"),
                iface("wasi:http/types,client@0.3.0"),
            ],
            exports: vec![
                iface("wasi:http/incoming-handler@0.2.0"),
                iface("wasi:http/handler@0.3.0"),
            ],
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
        component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        if component.imports_track("wasi:http", "0.2.0") {
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
        }
        if component.imports_track("wasi:http", "0.3.0") {
            wasmtime_wasi_http::p3::add_to_linker(linker)?;
        }
        Ok(())
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
        let mut handlers = workload.exporting(INCOMING_HANDLER);
        handlers.extend(workload.exporting(HANDLER));
        let component = match handlers.as_slice() {
            [] => return Ok(()),
            [one] => (*one).clone(),
            many => wasmtime::bail!(
                "{} components export {INCOMING_HANDLER} or {HANDLER}; only one may answer HTTP",
                many.len()
            ),
        };
        let export = Arc::new(HttpExport::of(component.instance_pre())?);
        let hosts = claimed_hosts(&workload.spec);
        tracing::info!(workload = %workload.id(), component = &*component.identity.component, ?hosts, "HTTP route ready");
        self.router.insert(
            Route {
                workload: workload.id(),
                group: workload.spec.http_group(),
                component,
                export,
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
