//! The state every component store carries. One fresh `Store<Ctx>` per invocation keeps
//! invocations isolated; plugins reach their part of it through the views implemented here.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::egress::EgressPolicy;
use crate::limiter::Limiter;

/// Who a store belongs to, for logs and metrics.
#[derive(Clone, Debug)]
pub struct Identity {
    pub workload: Arc<str>,
    pub component: Arc<str>,
}

pub struct Ctx {
    pub(crate) identity: Identity,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) egress: EgressPolicy,
    pub(crate) config: Arc<ConfigValues>,
    pub(crate) limiter: Limiter,
}

impl Ctx {
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn config(&self) -> &ConfigValues {
        &self.config
    }
}

/// A component's wasi:config values, in the forms both served versions need.
pub struct ConfigValues {
    pub values: BTreeMap<String, String>,
    pub(crate) wasmtime: WasiConfigVariables,
}

impl FromIterator<(String, String)> for ConfigValues {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let values: BTreeMap<String, String> = iter.into_iter().collect();
        let wasmtime = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Self { values, wasmtime }
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}
