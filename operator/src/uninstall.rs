//! `operator uninstall`: run by the chart's pre-delete hook so that `helm uninstall` leaves no
//! Workload stuck on Weft's finalizer. Once the operator and host-agents are gone nobody would
//! release it, and deleting a Workload would hang forever.
//!
//! Order matters: the operator adds the finalizer back to any Workload it reconciles, so it is
//! scaled to zero and its Pods are waited out before the finalizers go. Workloads themselves are
//! kept (Helm keeps the CRDs too): uninstalling Weft does not delete what users applied.

use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;
use weft_api::Workload;
use weft_api::labels::CLEANUP_FINALIZER;

use crate::workload_controller::patch_finalizers;

/// Arguments of `operator uninstall`.
#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    /// Namespace of the operator's Deployment.
    #[arg(long, env = "POD_NAMESPACE", default_value = "weft-system")]
    pub namespace: String,

    /// The operator's Deployment, scaled to zero first so it cannot add the finalizer back.
    #[arg(long)]
    pub deployment: String,

    /// How long to wait for the operator's Pods to exit before releasing anyway.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// How often the Pods are listed while waiting for them to go.
const POLL: Duration = Duration::from_millis(500);
/// How many times one Workload's finalizer patch is retried after a conflict.
const CONFLICT_RETRIES: usize = 5;

/// Stops the operator, then releases the finalizer of every Workload in the cluster.
pub async fn run(client: Client, args: &UninstallArgs) -> anyhow::Result<()> {
    stop_operator(&client, args).await?;
    let released = release_finalizers(&client).await?;
    println!("released the finalizer of {released} Workload(s); the Workloads themselves are kept");
    Ok(())
}

/// Scales the operator to zero and waits (up to the timeout) until none of its Pods is left.
async fn stop_operator(client: &Client, args: &UninstallArgs) -> anyhow::Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &args.namespace);
    let Some(deployment) = deployments
        .get_opt(&args.deployment)
        .await
        .with_context(|| format!("reading Deployment {}/{}", args.namespace, args.deployment))?
    else {
        println!(
            "Deployment {}/{} is already gone",
            args.namespace, args.deployment
        );
        return Ok(());
    };
    deployments
        .patch(
            &args.deployment,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 0}})),
        )
        .await
        .with_context(|| format!("scaling {}/{} to zero", args.namespace, args.deployment))?;

    let selector = deployment
        .spec
        .and_then(|spec| spec.selector.match_labels)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);
    let deadline = Instant::now() + args.timeout;
    loop {
        let left = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .context("listing the operator's Pods")?
            .items
            .len();
        if left == 0 {
            println!("the operator is stopped");
            return Ok(());
        }
        if Instant::now() >= deadline {
            eprintln!(
                "warning: {left} operator Pod(s) still exist after {:?}; releasing anyway",
                args.timeout
            );
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Removes Weft's finalizer from every Workload that has it; returns how many.
async fn release_finalizers(client: &Client) -> anyhow::Result<usize> {
    let all: Api<Workload> = Api::all(client.clone());
    let mut released = 0;
    for listed in all
        .list(&ListParams::default())
        .await
        .context("listing Workloads")?
    {
        let namespace = listed.namespace().unwrap_or_default();
        let api: Api<Workload> = Api::namespaced(client.clone(), &namespace);
        let mut workload = listed;
        for attempt in 0.. {
            let finalizers: Vec<String> = workload
                .finalizers()
                .iter()
                .filter(|f| *f != CLEANUP_FINALIZER)
                .cloned()
                .collect();
            if finalizers.len() == workload.finalizers().len() {
                break;
            }
            match patch_finalizers(&api, &workload, &finalizers).await {
                Ok(_) => {
                    released += 1;
                    break;
                }
                Err(kube::Error::Api(e)) if e.code == 404 => break,
                Err(kube::Error::Api(e)) if e.code == 409 && attempt < CONFLICT_RETRIES => {
                    let name = workload.name_any();
                    match api
                        .get_opt(&name)
                        .await
                        .with_context(|| format!("reading Workload {namespace}/{name}"))?
                    {
                        Some(fresh) => workload = fresh,
                        None => break,
                    }
                }
                Err(error) => {
                    return Err(error).with_context(|| {
                        format!(
                            "releasing the finalizer of Workload {namespace}/{}",
                            workload.name_any()
                        )
                    });
                }
            }
        }
    }
    Ok(released)
}
