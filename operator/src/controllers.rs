//! Wires the caches and the three controllers together and runs them until shutdown.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, watch};
use weft_api::hostnames::HostnameGrants;
use weft_api::labels::{HOST_LEASE_PREFIX, HOST_POD_ANNOTATION};
use weft_api::{Host, Workload, WorkloadDeployment};

use crate::assignments::Assignments;
use crate::claims_index::ClaimsIndex;
use crate::context::{Caches, Context};
use crate::endpoints::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::error::chain;
use crate::host_changes::{Concerns, HostChanges};
use crate::lease_clock::LeaseClock;
use crate::metrics::Metrics;
use crate::placements::{Placements, PlacementsIndex};
use crate::replica_changes::ReplicaChanges;
use crate::{deployment_controller, host_controller, workload_controller};

/// Name of the operator in Events (`reportingController`).
pub const REPORTER: &str = "weft-operator";

/// Delays reconciliations a little after a trigger, so the caches fed by other watches have seen
/// the same change by the time the reconciliation reads them.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Workload reconciliations at once. Unbounded, a failed Host's 2,500 Workloads were 2,500
/// reconciliations queueing their requests at once; bounded, each finishes sooner and what else
/// the operator asks the API server is not stuck behind them.
const WORKLOAD_CONCURRENCY: u16 = 32;
/// How often the gauges are recomputed from the caches.
const GAUGE_PERIOD: Duration = Duration::from_secs(5);

/// Passes on the Workloads a WorkloadDeployment owns, as they change or go: the trigger of
/// their owner's reconciliation. Others are not cloned. (A replica's deletion already arrives
/// as an update setting its deletionTimestamp, the operator's finalizer holding it; the final
/// Delete is passed on too, so a replica without the finalizer is replaced as well.)
fn forward_replicas(
    event: &watcher::Event<Workload>,
    to: &futures::channel::mpsc::UnboundedSender<Workload>,
) {
    let (watcher::Event::Apply(workload)
    | watcher::Event::InitApply(workload)
    | watcher::Event::Delete(workload)) = event
    else {
        return;
    };
    let owned = workload
        .owner_references()
        .iter()
        .any(|o| o.kind == WorkloadDeployment::kind(&()));
    if owned {
        // The receiver is gone only at shutdown.
        let _ = to.unbounded_send(workload.clone());
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// A cache of `api`, and the future that keeps it filled until `stop`.
fn cache<K>(
    api: Api<K>,
    config: watcher::Config,
    stop: watch::Receiver<bool>,
    observe: impl Fn(&Result<watcher::Event<K>, watcher::Error>),
) -> (Store<K>, impl Future<Output = ()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, writer) = reflector::store();
    let kind = K::kind(&Default::default()).into_owned();
    let events = watcher(api, config).default_backoff().inspect(observe);
    let run = reflector::reflector(writer, events)
        .take_until(stopped(stop))
        .for_each(move |event| {
            if let Err(error) = event {
                tracing::warn!(kind = %kind, error = %chain(&error), "watch failed; retrying");
            }
            futures::future::ready(())
        });
    (store, run)
}

/// Logs the outcome of one reconciliation the controller reports (errors are already logged by
/// the error policies).
fn log_result<K: Resource, E: std::error::Error, Q: std::error::Error>(
    result: Result<(ObjectRef<K>, controller::Action), controller::Error<E, Q>>,
) -> futures::future::Ready<()> {
    match result {
        Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
        Err(controller::Error::ObjectNotFound(_)) => {}
        Err(error) => tracing::warn!(error = %chain(&error), "controller error"),
    }
    futures::future::ready(())
}

/// The Workloads to reconcile because a Host changed (see [`crate::host_changes`]).
fn concerned(placements: &Placements, concerns: &[Concerns]) -> Vec<ObjectRef<Workload>> {
    (concerns.iter())
        .flat_map(|concern| match concern {
            Concerns::HostAndUnscheduled(host) => placements.of_host_and_unscheduled(host),
            Concerns::Unscheduled => placements.unscheduled(),
        })
        .collect()
}

/// Runs the controllers until `stop` turns true; returns once they have finished their in-flight
/// reconciliations.
pub async fn run(
    client: Client,
    namespace: String,
    identity: String,
    metrics: Arc<Metrics>,
    hostname_grants: HostnameGrants,
    stop: watch::Receiver<bool>,
) {
    let config = watcher::Config::default().any_semantic();
    let lease_clock = Arc::new(LeaseClock::default());
    let clock = lease_clock.clone();
    let (leases, run_leases) = cache(
        Api::<Lease>::namespaced(client.clone(), &namespace),
        config.clone(),
        stop.clone(),
        move |event| clock.watched(event),
    );
    let (pods, run_pods) = cache(
        Api::<Pod>::namespaced(client.clone(), &namespace),
        config.clone(),
        stop.clone(),
        |_| {},
    );
    let (endpoint_slices, run_slices) = cache(
        Api::<EndpointSlice>::all(client.clone()),
        config
            .clone()
            .labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
        stop.clone(),
        |_| {},
    );

    // The one Workload watch feeds the indexes, the Workload controller's cache and the
    // WorkloadDeployment controller's triggers (its replicas, deletions included): a second
    // watch of every Workload would double what the API server sends for each.
    let claims = Arc::new(ClaimsIndex::default());
    let placements = Arc::new(PlacementsIndex::default());
    let (workloads, writer) = reflector::store();
    let (claims_in, placements_in) = (claims.clone(), placements.clone());
    let (replica_tx, replica_rx) = futures::channel::mpsc::unbounded();
    let (rivals_tx, rivals_rx) = futures::channel::mpsc::unbounded();
    let workload_events = watcher(Api::<Workload>::all(client.clone()), config.clone())
        .default_backoff()
        .inspect(move |event| {
            if let Ok(event) = event {
                for rival in claims_in.observe(event) {
                    // The receiver is gone only at shutdown.
                    let _ = rivals_tx.unbounded_send(rival);
                }
                placements_in.observe(event);
                forward_replicas(event, &replica_tx);
            }
        });
    // Workloads follow their Host, not its Lease: a lapse reaches them when the Host controller
    // marks the Host not Ready (it requeues itself for the expiry), a return when the agent
    // marks it Ready again. Only changes of what they read of their Host reconcile them.
    let mut host_changes = HostChanges::default();
    let on_host = placements.clone();
    let host_triggers = watcher(Api::<Host>::all(client.clone()), config.clone())
        .default_backoff()
        .flat_map(move |event| {
            let concerns = match &event {
                Ok(event) => host_changes.observe(event),
                Err(error) => {
                    tracing::warn!(kind = "Host", error = %chain(error), "watch failed; retrying");
                    Vec::new()
                }
            };
            futures::stream::iter(on_host.read(|p| concerned(p, &concerns)))
        });
    let workload_controller = Controller::for_stream(
        reflector::reflector(writer, workload_events).applied_objects(),
        workloads.clone(),
    );
    let host_controller = Controller::new(Api::<Host>::all(client.clone()), config.clone());
    let deployment_controller = Controller::new(
        Api::<WorkloadDeployment>::all(client.clone()),
        config.clone(),
    );
    let hosts = host_controller.store();
    let deployments = deployment_controller.store();

    let ctx = Arc::new(Context {
        client: client.clone(),
        namespace: namespace.clone(),
        reporter: Reporter {
            controller: REPORTER.to_owned(),
            instance: Some(identity),
        },
        metrics: metrics.clone(),
        caches: Caches {
            hosts: hosts.clone(),
            workloads: workloads.clone(),
            claims,
            placements,
            deployments,
            leases: leases.clone(),
            pods: pods.clone(),
            endpoint_slices,
        },
        assignments: Mutex::new(Assignments::default()),
        hostname_grants,
        lease_clock,
        replica_changes: Mutex::new(ReplicaChanges::default()),
        confirmed: Default::default(),
    });

    // Besides its own changes, a Workload is reconciled when its Host changes or a rival for
    // its host names comes or goes; nothing polls it.
    let run_workloads = workload_controller
        .with_config(
            controller::Config::default()
                .debounce(DEBOUNCE)
                .concurrency(WORKLOAD_CONCURRENCY),
        )
        .reconcile_on(futures::stream::select(rivals_rx, host_triggers))
        .graceful_shutdown_on(stopped(stop.clone()))
        .run(
            workload_controller::reconcile,
            workload_controller::error_policy,
            ctx.clone(),
        )
        .for_each(log_result);

    let pod_hosts = hosts.clone();
    let run_hosts = host_controller
        .with_config(controller::Config::default().debounce(DEBOUNCE))
        .watches(
            Api::<Lease>::namespaced(client.clone(), &namespace),
            config.clone(),
            |lease: Lease| {
                lease
                    .name_any()
                    .strip_prefix(HOST_LEASE_PREFIX)
                    .map(ObjectRef::<Host>::new)
            },
        )
        .watches(
            Api::<Pod>::namespaced(client.clone(), &namespace),
            config.clone(),
            move |pod: Pod| {
                let name = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
                pod_hosts
                    .state()
                    .iter()
                    .filter(|host| host.annotations().get(HOST_POD_ANNOTATION) == Some(&name))
                    .map(|host| ObjectRef::from_obj(host.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(stopped(stop.clone()))
        .run(
            host_controller::reconcile,
            host_controller::error_policy,
            ctx.clone(),
        )
        .for_each(log_result);

    let run_deployments = deployment_controller
        .with_config(controller::Config::default().debounce(DEBOUNCE))
        .owns_stream(replica_rx.map(Ok))
        .graceful_shutdown_on(stopped(stop.clone()))
        .run(
            deployment_controller::reconcile,
            deployment_controller::error_policy,
            ctx.clone(),
        )
        .for_each(log_result);

    let gauges = {
        let mut stop = stop.clone();
        async move {
            loop {
                let hosts = hosts.state();
                let workloads = workloads.state();
                metrics.observe_cluster(
                    hosts.iter().map(Arc::as_ref),
                    workloads.iter().map(Arc::as_ref),
                );
                tokio::select! {
                    _ = tokio::time::sleep(GAUGE_PERIOD) => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
            }
        }
    };

    tracing::info!(namespace = %namespace, "controllers started");
    futures::join!(
        run_workloads,
        run_hosts,
        run_deployments,
        run_leases,
        run_pods,
        run_slices,
        gauges
    );
    tracing::info!("controllers stopped");
}
