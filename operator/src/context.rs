//! State shared by the controllers: the API client, caches of every kind they read, the event
//! recorder and the metrics.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::ResourceExt;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::Mutex;
use weft_api::hostnames::HostnameGrants;
use weft_api::labels::HOST_LEASE_PREFIX;
use weft_api::{Host, Workload, WorkloadDeployment};
use weft_daemon::cache::ready;

use crate::assignments::Assignments;
use crate::claims_index::ClaimsIndex;
use crate::error::Error;
use crate::lease_clock::{LeaseClock, LeaseState};
use crate::metrics::Metrics;
use crate::placements::PlacementsIndex;
use crate::replica_changes::ReplicaChanges;
use crate::scheduler::Candidate;

/// How long a reconciliation waits for the caches' initial lists before failing (and retrying).
const CACHE_WAIT: Duration = Duration::from_secs(30);

/// Caches of the objects the controllers read, filled by watches.
#[derive(Clone)]
pub struct Caches {
    pub hosts: Store<Host>,
    pub workloads: Store<Workload>,
    /// Which Workloads claim each HTTP host name, fed by the same watch as `workloads`.
    pub claims: Arc<ClaimsIndex>,
    /// Each Workload's Host and each Host's totals, fed by the same watch.
    pub placements: Arc<PlacementsIndex>,
    pub deployments: Store<WorkloadDeployment>,
    /// Leases in the operator's namespace (the host-agents' heartbeats among them).
    pub leases: Store<Lease>,
    /// Pods in the operator's namespace (the host-agents' among them).
    pub pods: Store<Pod>,
    /// EndpointSlices managed by the operator, in all namespaces.
    pub endpoint_slices: Store<EndpointSlice>,
}

/// Everything a reconciliation needs.
pub struct Context {
    pub client: Client,
    /// Where Leases (the operator's and the host-agents') and host-agent Pods live.
    pub namespace: String,
    /// Who publishes the Events (see [`crate::events`]).
    pub reporter: Reporter,
    pub metrics: Arc<Metrics>,
    pub caches: Caches,
    /// Held while choosing a Host and setting the label, so concurrent reconciliations count
    /// each other's assignments.
    pub assignments: Mutex<Assignments>,
    /// Which HTTP host names each namespace may claim.
    pub hostname_grants: HostnameGrants,
    /// When each host's Lease was last seen renewed (fed by the Lease watch).
    pub lease_clock: Arc<LeaseClock>,
    /// Replicas created or deleted that the Workload cache may not show yet.
    pub replica_changes: Mutex<ReplicaChanges>,
    /// Hosts the API server confirmed unhealthy (see [`crate::host_health`]).
    pub confirmed: crate::host_health::Confirmed,
}

impl Context {
    /// Waits until every cache has its initial list, so "absent" means absent.
    pub async fn caches_ready(&self) -> Result<(), Error> {
        let caches = &self.caches;
        let wait = async {
            ready(&caches.hosts)
                .await
                .map_err(|_| Error::CacheNotReady("Host"))?;
            ready(&caches.workloads)
                .await
                .map_err(|_| Error::CacheNotReady("Workload"))?;
            ready(&caches.deployments)
                .await
                .map_err(|_| Error::CacheNotReady("WorkloadDeployment"))?;
            ready(&caches.leases)
                .await
                .map_err(|_| Error::CacheNotReady("Lease"))?;
            ready(&caches.pods)
                .await
                .map_err(|_| Error::CacheNotReady("Pod"))?;
            ready(&caches.endpoint_slices)
                .await
                .map_err(|_| Error::CacheNotReady("EndpointSlice"))
        };
        tokio::time::timeout(CACHE_WAIT, wait).await.map_err(|_| {
            Error::CacheNotReady("Host, Workload, WorkloadDeployment, Lease, Pod or EndpointSlice")
        })?
    }

    /// The cached WorkloadDeployment `workload` is a replica of, if it still exists (same uid).
    pub fn deployment_of(&self, workload: &Workload) -> Option<Arc<WorkloadDeployment>> {
        let owner = workload.deployment_owner()?;
        let namespace = workload.namespace()?;
        self.caches
            .deployments
            .get(&ObjectRef::new(&owner.name).within(&namespace))
            .filter(|d| d.uid().as_deref() == Some(owner.uid.as_str()))
    }

    /// When `workload`'s claimant first claimed `host` (see [`crate::claims`]).
    pub fn claimed_since(&self, workload: &Workload, host: &str) -> Option<Timestamp> {
        match workload.deployment_owner() {
            Some(_) => self
                .deployment_of(workload)
                .and_then(|d| crate::claims::first_claim(d.as_ref(), host)),
            None => crate::claims::first_claim(workload, host),
        }
    }

    /// Name of the heartbeat Lease of `host`.
    pub fn lease_name(host: &str) -> String {
        format!("{HOST_LEASE_PREFIX}{host}")
    }

    /// The cached heartbeat Lease of `host`.
    pub fn host_lease(&self, host: &str) -> Option<Arc<Lease>> {
        self.caches
            .leases
            .get(&ObjectRef::new(&Self::lease_name(host)).within(&self.namespace))
    }

    /// The state of `host`'s heartbeat Lease as cached.
    pub fn host_lease_state(&self, host: &str) -> LeaseState {
        self.lease_clock.state(self.host_lease(host).as_deref())
    }

    /// The state of `host`'s heartbeat Lease read from the API server, for decisions the cache
    /// may be too stale to make (marking a Host expired, moving its Workloads).
    pub async fn fresh_host_lease_state(&self, host: &str) -> Result<LeaseState, Error> {
        let name = Self::lease_name(host);
        let lease = kube::Api::<Lease>::namespaced(self.client.clone(), &self.namespace)
            .get_opt(&name)
            .await
            .map_err(Error::kube(format!(
                "reading Lease {}/{name}",
                self.namespace
            )))?;
        Ok(self.lease_clock.state(lease.as_ref()))
    }

    /// The scheduler's view of every cached Host, given the load per Host.
    pub fn candidates(
        &self,
        load: &std::collections::HashMap<String, crate::assignments::Load>,
    ) -> Vec<Candidate> {
        self.caches
            .hosts
            .state()
            .iter()
            .map(|host| {
                let name = host.metadata.name.as_deref().unwrap_or_default();
                let assigned = load.get(name).copied().unwrap_or_default();
                Candidate::new(host, self.host_lease_state(name), assigned)
            })
            .collect()
    }
}
