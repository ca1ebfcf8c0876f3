//! The WorkloadDeployment controller: keeps `replicas` Workloads made from the template, rolls a
//! changed template out by the strategy ([`crate::rollout`]), records template revisions
//! ([`crate::revisions`]) and writes the status ([`crate::deployment_status`]). Replicas are
//! owned by their WorkloadDeployment, so Kubernetes' garbage collector deletes them with it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use weft_api::labels::{OPERATOR_FIELD_MANAGER, TEMPLATE_HASH_LABEL, condition};
use weft_api::{Host, Phase, Workload, WorkloadDeployment};

use crate::context::Context;
use crate::deployment_status::Observed;
use crate::error::{Error, chain};
use crate::metrics::DEPLOYMENT_CONTROLLER;
use crate::rollout::{Replica, Step, next_step};
use crate::scheduler::find_condition;
use crate::{endpoints, events, revisions};

/// Requeue while a rollout is under way: replicas become ready without the WorkloadDeployment
/// changing, and the progress deadline must be noticed.
const ROLLING_REQUEUE: Duration = Duration::from_secs(2);
/// Requeue after an error.
const ERROR_REQUEUE: Duration = Duration::from_secs(2);

/// Reconciles one WorkloadDeployment.
#[tracing::instrument(name = "reconcile WorkloadDeployment", skip_all, fields(namespace = deployment.namespace(), name = deployment.name_any()))]
pub async fn reconcile(
    deployment: Arc<WorkloadDeployment>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    ctx.metrics.reconciled(DEPLOYMENT_CONTROLLER);
    ctx.caches_ready().await?;
    if deployment.meta().deletion_timestamp.is_some() {
        // The garbage collector deletes the replicas (ownerReferences).
        return Ok(Action::await_change());
    }
    let namespace = deployment.namespace().ok_or(Error::MissingField {
        kind: "WorkloadDeployment",
        field: "metadata.namespace",
    })?;
    let name = deployment.name_any();
    let key = format!("{namespace}/{name}");
    let hash = deployment.spec.template.hash();
    let workloads: Api<Workload> = Api::namespaced(ctx.client.clone(), &namespace);

    let owned = owned_workloads(&deployment, &ctx);
    let cached = owned.iter().map(|w| replica_view(w)).collect();
    // The lock guards the map only: kube-runtime never reconciles one WorkloadDeployment twice
    // at once, so no other reconciliation changes this key between the calls below.
    let replicas = ctx
        .replica_changes
        .lock()
        .await
        .correct(&key, cached, Instant::now());
    let step = next_step(&deployment.spec, &hash, &replicas);
    let mut after = replicas;
    for _ in 0..step.create {
        let created = workloads
            .create(
                &PostParams {
                    field_manager: Some(OPERATOR_FIELD_MANAGER.to_owned()),
                    ..Default::default()
                },
                &replica(&deployment, &hash)?,
            )
            .await
            .map_err(Error::kube(format!(
                "creating a replica of WorkloadDeployment {key}"
            )))?;
        let created = replica_view(&created);
        ctx.replica_changes
            .lock()
            .await
            .created(&key, created.clone(), Instant::now());
        after.push(created);
    }
    for victim in &step.delete {
        match workloads.delete(victim, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::Kube {
                    what: format!(
                        "deleting replica {namespace}/{victim} of WorkloadDeployment {key}"
                    ),
                    source,
                });
            }
        }
        ctx.replica_changes
            .lock()
            .await
            .deleted(&key, victim.clone(), Instant::now());
        if let Some(r) = after.iter_mut().find(|r| &r.name == victim) {
            r.terminating = true;
        }
    }
    announce(&deployment, &step, &ctx).await;

    revisions::reconcile(&deployment, &hash, &ctx).await?;
    endpoint_slices(&deployment, &owned, &ctx).await?;

    let now = Timestamp::now();
    let hosts = deployment.spec.template.spec.http_hosts(&namespace);
    let observed = Observed {
        name: &name,
        generation: deployment.meta().generation,
        spec: &deployment.spec,
        hash: &hash,
        replicas: &after,
        previous: deployment.status.as_ref(),
        acted: !step.is_empty(),
        hostnames: crate::claims::record(deployment.as_ref(), &hosts, now),
        now,
    };
    let status = observed.status();
    if deployment.status.as_ref() != Some(&status) {
        let api: Api<WorkloadDeployment> = Api::namespaced(ctx.client.clone(), &namespace);
        let body = json!({
            "apiVersion": WorkloadDeployment::api_version(&()),
            "kind": WorkloadDeployment::kind(&()),
            "status": status,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(OPERATOR_FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(Error::kube(format!(
            "applying the status of WorkloadDeployment {key}"
        )))?;
    }

    let settled = step.is_empty()
        && status.replicas == deployment.spec.replicas
        && status.updated_replicas == status.replicas
        && status.ready_replicas == status.replicas;
    Ok(match (settled, observed.until_deadline(&status)) {
        // Settled: its replicas' changes reach it (`owns_stream`); nothing polls it.
        (true, _) => Action::await_change(),
        (false, Some(left)) => {
            Action::requeue(left.clamp(Duration::from_millis(200), ROLLING_REQUEUE))
        }
        (false, None) => Action::requeue(ROLLING_REQUEUE),
    })
}

/// Logs a failed reconciliation and retries soon.
pub fn error_policy(
    deployment: Arc<WorkloadDeployment>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    ctx.metrics.reconcile_failed(DEPLOYMENT_CONTROLLER);
    tracing::warn!(
        deployment = %deployment.name_any(),
        namespace = %deployment.namespace().unwrap_or_default(),
        error = %chain(error),
        "reconciling a WorkloadDeployment failed"
    );
    Action::requeue(ERROR_REQUEUE)
}

/// The cached replicas of `deployment`: Workloads in its namespace it controls (by uid).
fn owned_workloads(deployment: &WorkloadDeployment, ctx: &Context) -> Vec<Arc<Workload>> {
    let namespace = deployment.namespace();
    let uid = deployment.uid();
    ctx.caches
        .workloads
        .state()
        .into_iter()
        .filter(|w| {
            w.namespace() == namespace && w.deployment_owner().map(|o| &o.uid) == uid.as_ref()
        })
        .collect()
}

/// The EndpointSlices of the Services the template and the live replicas name, each listing the
/// Hosts where a replica runs Ready. A replica being deleted is no longer listed.
async fn endpoint_slices(
    deployment: &WorkloadDeployment,
    owned: &[Arc<Workload>],
    ctx: &Context,
) -> Result<(), Error> {
    let owner = deployment
        .controller_owner_ref(&())
        .ok_or(Error::MissingField {
            kind: "WorkloadDeployment",
            field: "metadata.uid",
        })?;
    let hosts: Vec<_> = owned
        .iter()
        .filter(|w| w.meta().deletion_timestamp.is_none())
        .filter_map(|w| {
            let service = endpoints::service_of(w)?.to_owned();
            let host = w
                .status
                .as_ref()
                .filter(|s| s.phase == Some(Phase::Running))
                .and_then(|s| s.host.as_deref())
                .and_then(|h| ctx.caches.hosts.get(&ObjectRef::new(h)));
            Some((service, host))
        })
        .collect();
    let mut wanted: BTreeMap<String, Vec<&Host>> = BTreeMap::new();
    if let Some(service) = deployment
        .spec
        .template
        .spec
        .kubernetes
        .as_ref()
        .and_then(|k| k.service.as_ref())
    {
        wanted.entry(service.name.clone()).or_default();
    }
    for (service, host) in &hosts {
        wanted
            .entry(service.clone())
            .or_default()
            .extend(host.as_deref());
    }
    let namespace = deployment.namespace().unwrap_or_default();
    endpoints::apply(&namespace, owner, wanted, ctx).await
}

/// What the rollout needs to know of one replica.
fn replica_view(workload: &Workload) -> Replica {
    let ready = workload
        .status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, condition::READY))
        .is_some_and(|c| c.status == "True");
    Replica {
        name: workload.name_any(),
        hash: workload
            .labels()
            .get(TEMPLATE_HASH_LABEL)
            .cloned()
            .unwrap_or_default(),
        ready,
        host: workload.assignment().host().map(str::to_owned),
        terminating: workload.meta().deletion_timestamp.is_some(),
        created: workload.meta().creation_timestamp.as_ref().map(|t| t.0),
    }
}

/// A new replica of `deployment`'s template, named `<deployment>-<hash>-<5 random characters>`
/// by the API server.
fn replica(deployment: &WorkloadDeployment, hash: &str) -> Result<Workload, Error> {
    let mut replica = deployment.replica().ok_or(Error::MissingField {
        kind: "WorkloadDeployment",
        field: "metadata.uid",
    })?;
    replica.metadata.generate_name = Some(format!("{}-{hash}-", deployment.name_any()));
    Ok(replica)
}

/// One Event per step, as `kubectl describe` shows for a Deployment.
async fn announce(deployment: &WorkloadDeployment, step: &Step, ctx: &Context) {
    let mut notes = vec![];
    if step.create > 0 {
        notes.push(format!("created {} replica(s)", step.create));
    }
    if !step.delete.is_empty() {
        notes.push(format!("deleted {}", step.delete.join(", ")));
    }
    if notes.is_empty() {
        return;
    }
    let note = notes.join("; ");
    tracing::info!(deployment = %deployment.name_any(), namespace = %deployment.namespace().unwrap_or_default(), "{note}");
    events::publish(
        &ctx.client,
        &ctx.reporter,
        deployment,
        EventType::Normal,
        events::SCALING,
        "Scaling",
        format!("Scaled: {note}"),
    )
    .await;
}
