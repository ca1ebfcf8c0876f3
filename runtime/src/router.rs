//! Which workload answers a request: by its `Host` header, matched against the hosts each
//! workload's `wasi:http` interface config claims. Workloads of one group (the replicas of one
//! WorkloadDeployment) share their hosts, and requests go round-robin among them; any other
//! workload claims its hosts alone. Replacing a workload's route is one atomic swap, so an update
//! never drops a request.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use weft_api::hostnames::normalize as normalize_host;

use crate::instance::ComponentRuntime;
use crate::plugins::http::HttpExport;

/// One workload's HTTP entry point.
pub struct Route {
    /// The workload's id.
    pub workload: String,
    /// Who the workload's hosts belong to: itself, or the group of replicas it is one of.
    pub group: String,
    /// The component exporting `wasi:http/incoming-handler`.
    pub component: Arc<ComponentRuntime>,
    /// Where its handler is, WASI 0.2 or 0.3.
    pub export: Arc<HttpExport>,
}

/// A host another workload already serves.
#[derive(Debug, thiserror::Error)]
#[error("host {host} is already served by workload {owner}")]
pub struct HostTaken {
    /// The host asked for.
    pub host: String,
    /// The workload (or group) serving it.
    pub owner: String,
}

/// The routes answering one host (several only when they share a group).
#[derive(Default)]
struct Routes {
    routes: Vec<Arc<Route>>,
    next: AtomicUsize,
}

impl Routes {
    fn pick(&self) -> Option<Arc<Route>> {
        if self.routes.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.routes[turn % self.routes.len()].clone())
    }
}

#[derive(Default)]
struct Table {
    by_host: HashMap<String, Routes>,
    by_workload: HashMap<String, (Vec<String>, Arc<Route>)>,
    /// Every route, for a local run that answers any host when one group serves alone.
    any: Routes,
}

/// Which workload answers each HTTP host: a host is claimed by one workload (or one group of
/// replicas) at a time.
#[derive(Default)]
pub struct Router {
    table: RwLock<Table>,
    answer_any_host_when_alone: bool,
}

impl Router {
    /// In local mode a lone HTTP workload (or group of replicas) answers whatever host the
    /// request names.
    pub fn new(answer_any_host_when_alone: bool) -> Self {
        Self {
            table: RwLock::default(),
            answer_any_host_when_alone,
        }
    }

    /// The route for a request's `Host` (port and case ignored), balanced among a group.
    pub fn lookup(&self, host: Option<&str>) -> Option<Arc<Route>> {
        let table = self.table.read();
        if let Some(routes) = host.and_then(|h| table.by_host.get(&normalize_host(h))) {
            return routes.pick();
        }
        if !self.answer_any_host_when_alone {
            return None;
        }
        let routes = &table.any.routes;
        let alone = routes
            .first()
            .is_some_and(|first| routes.iter().all(|r| r.group == first.group));
        if alone { table.any.pick() } else { None }
    }

    /// A workload outside `group` that already claims `host`, if any.
    pub fn claimed_by(&self, host: &str, group: &str) -> Option<String> {
        let table = self.table.read();
        table
            .by_host
            .get(&normalize_host(host))
            .and_then(|routes| routes.routes.iter().find(|r| r.group != group))
            .map(|r| r.workload.clone())
    }

    /// Installs (or replaces) a workload's route for `hosts`, unless a workload outside its
    /// group claims one of them: then nothing changes, and the claimant is named. Workloads
    /// start concurrently, so this, not an earlier [`Router::claimed_by`], is what decides.
    pub fn insert(&self, route: Route, hosts: &[String]) -> Result<(), HostTaken> {
        let route = Arc::new(route);
        let hosts: Vec<String> = hosts.iter().map(|h| normalize_host(h)).collect();
        let mut table = self.table.write();
        for host in &hosts {
            let owner = table.by_host.get(host).and_then(|routes| {
                routes
                    .routes
                    .iter()
                    .find(|r| r.group != route.group && r.workload != route.workload)
            });
            if let Some(owner) = owner {
                return Err(HostTaken {
                    host: host.clone(),
                    owner: owner.workload.clone(),
                });
            }
        }
        Self::remove_locked(&mut table, &route.workload);
        for host in &hosts {
            let routes = &mut table.by_host.entry(host.clone()).or_default().routes;
            routes.push(route.clone());
        }
        table.any.routes.push(route.clone());
        table
            .by_workload
            .insert(route.workload.clone(), (hosts, route));
        Ok(())
    }

    /// Drops the routes of `workload` and frees its hosts.
    pub fn remove(&self, workload: &str) {
        Self::remove_locked(&mut self.table.write(), workload);
    }

    fn remove_locked(table: &mut Table, workload: &str) {
        let Some((hosts, _)) = table.by_workload.remove(workload) else {
            return;
        };
        for host in hosts {
            if let Some(routes) = table.by_host.get_mut(&host) {
                routes.routes.retain(|r| r.workload != workload);
                if routes.routes.is_empty() {
                    table.by_host.remove(&host);
                }
            }
        }
        table.any.routes.retain(|r| r.workload != workload);
    }
}
