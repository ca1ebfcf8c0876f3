//! Which workload answers a request: by its `Host` header, matched against the hosts each
//! workload's `wasi:http` interface config claims. Replacing a workload's route is one atomic
//! swap, so an update never drops a request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use wasmtime_wasi_http::p2::bindings::ProxyIndices;

use crate::instance::ComponentRuntime;

/// One workload's HTTP entry point.
pub struct Route {
    pub workload: String,
    pub component: Arc<ComponentRuntime>,
    pub indices: Arc<ProxyIndices>,
}

#[derive(Default)]
struct Table {
    by_host: HashMap<String, Arc<Route>>,
    by_workload: HashMap<String, (Vec<String>, Arc<Route>)>,
}

#[derive(Default)]
pub struct Router {
    table: RwLock<Table>,
    answer_any_host_when_alone: bool,
}

use weft_api::hostnames::normalize as normalize_host;

impl Router {
    /// In local mode a lone HTTP workload answers whatever host the request names.
    pub fn new(answer_any_host_when_alone: bool) -> Self {
        Self {
            table: RwLock::default(),
            answer_any_host_when_alone,
        }
    }

    pub fn lookup(&self, host: Option<&str>) -> Option<Arc<Route>> {
        let table = self.table.read().expect("router lock");
        if let Some(route) = host.and_then(|h| table.by_host.get(&normalize_host(h))) {
            return Some(route.clone());
        }
        if self.answer_any_host_when_alone && table.by_workload.len() == 1 {
            return table.by_workload.values().next().map(|(_, r)| r.clone());
        }
        None
    }

    /// The workload other than `workload` that already claims `host`, if any.
    pub fn claimed_by(&self, host: &str, workload: &str) -> Option<String> {
        let table = self.table.read().expect("router lock");
        table
            .by_host
            .get(&normalize_host(host))
            .filter(|r| r.workload != workload)
            .map(|r| r.workload.clone())
    }

    /// Installs (or replaces) a workload's route for `hosts`.
    pub fn insert(&self, route: Route, hosts: &[String]) {
        let route = Arc::new(route);
        let hosts: Vec<String> = hosts.iter().map(|h| normalize_host(h)).collect();
        let mut table = self.table.write().expect("router lock");
        Self::remove_locked(&mut table, &route.workload);
        for host in &hosts {
            table.by_host.insert(host.clone(), route.clone());
        }
        table
            .by_workload
            .insert(route.workload.clone(), (hosts, route));
    }

    pub fn remove(&self, workload: &str) {
        Self::remove_locked(&mut self.table.write().expect("router lock"), workload);
    }

    fn remove_locked(table: &mut Table, workload: &str) {
        if let Some((hosts, _)) = table.by_workload.remove(workload) {
            for host in hosts {
                if table
                    .by_host
                    .get(&host)
                    .is_some_and(|r| r.workload == workload)
                {
                    table.by_host.remove(&host);
                }
            }
        }
    }
}
