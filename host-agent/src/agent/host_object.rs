//! This host-agent's `Host` object: its spec (address, port, schedulability) and status
//! (readiness, capacity, interfaces served, workload count), applied with its field manager.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{Patch, PatchParams};
use weft_api::labels::{HOST_AGENT_FIELD_MANAGER, HOST_POD_ANNOTATION, condition, reason};
use weft_api::{Host, WitInterface};

pub struct Registration {
    pub api: Api<Host>,
    pub name: String,
    pub address: String,
    pub http_port: u16,
    /// `namespace/pod` when running in a Pod.
    pub pod: Option<String>,
    pub capacity: u32,
    /// The memory budget Workloads are placed against, in bytes.
    pub memory: u64,
    /// The instance slots Workloads are placed against.
    pub instances: u64,
    pub interfaces: Vec<(WitInterface, Vec<&'static str>)>,
    /// The Ready condition this agent last applied (status, transition time), while nobody
    /// else can have changed it; `None` sends the next status write to read the Host first.
    pub applied_ready: parking_lot::Mutex<Option<(bool, Time)>>,
}

impl Registration {
    /// Creates or updates the Host as schedulable and Ready.
    pub async fn register(&self) -> kube::Result<()> {
        self.apply_spec(false).await?;
        self.apply_status(true, "AgentReady", "the host-agent is running", 0)
            .await
    }

    /// Says this host is going away: unschedulable and not Ready, so its Workloads move.
    pub async fn shutting_down(&self) -> kube::Result<()> {
        self.apply_spec(true).await?;
        self.apply_status(
            false,
            reason::SHUTTING_DOWN,
            "the host-agent received SIGTERM",
            0,
        )
        .await
    }

    /// Forgets the Ready condition last applied: the operator marks a Host not Ready only
    /// when its Lease lapsed, so after a fence the Host must be read again.
    pub fn forget_applied(&self) {
        *self.applied_ready.lock() = None;
    }

    /// Refreshes the workload count (and re-asserts readiness after an operator marked the
    /// Host not Ready while this agent was unreachable).
    pub async fn report(&self, workloads: u32) -> kube::Result<()> {
        self.apply_status(true, "AgentReady", "the host-agent is running", workloads)
            .await
    }

    /// Registers the Host again whenever it is found deleted (by hand, or by anyone), checking
    /// every `period`, until the task is dropped.
    pub async fn keep_registered(self: std::sync::Arc<Self>, period: std::time::Duration) {
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match self.api.get_opt(&self.name).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    tracing::warn!(host = %self.name, "the Host was deleted; registering it again");
                    self.forget_applied();
                    if let Err(err) = self.register().await {
                        tracing::warn!(host = %self.name, %err, "could not register the Host again");
                    }
                }
                Err(err) => tracing::debug!(host = %self.name, %err, "could not read the Host"),
            }
        }
    }

    async fn apply_spec(&self, unschedulable: bool) -> kube::Result<()> {
        let mut metadata = serde_json::json!({ "name": self.name });
        if let Some(pod) = &self.pod {
            metadata["annotations"] = serde_json::json!({ HOST_POD_ANNOTATION: pod });
        }
        let host = serde_json::json!({
            "apiVersion": "weft.dev/v1alpha1",
            "kind": "Host",
            "metadata": metadata,
            "spec": {
                "address": self.address,
                "httpPort": self.http_port,
                "unschedulable": unschedulable,
            }
        });
        self.api
            .patch(&self.name, &self.params(), &Patch::Apply(host))
            .await
            .map(drop)
    }

    async fn apply_status(
        &self,
        ready: bool,
        why: &str,
        message: &str,
        workloads: u32,
    ) -> kube::Result<()> {
        let interfaces: Vec<serde_json::Value> = self
            .interfaces
            .iter()
            .map(|(i, backends)| {
                serde_json::json!({
                    "interface": i.to_string(),
                    "backend": backends.first().copied().unwrap_or("built-in"),
                    "backends": backends,
                })
            })
            .collect();
        let status = if ready { "True" } else { "False" };
        let applied = self.applied_ready.lock().clone();
        let since = match applied {
            Some((was_ready, since)) if was_ready == ready => since,
            Some(_) => Time(k8s_openapi::jiff::Timestamp::now()),
            // A failed read must not pass for "no Ready condition yet": that would restamp
            // lastTransitionTime (a restarting API server may refuse a read it then accepts).
            None => (self.api.get_opt(&self.name).await?)
                .as_ref()
                .and_then(|h| h.status.as_ref())
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition::READY))
                .filter(|c| c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(k8s_openapi::jiff::Timestamp::now())),
        };
        let host = serde_json::json!({
            "apiVersion": "weft.dev/v1alpha1",
            "kind": "Host",
            "metadata": { "name": self.name },
            "status": {
                "conditions": [{
                    "type": condition::READY,
                    "status": status,
                    "reason": why,
                    "message": message,
                    "lastTransitionTime": since,
                }],
                "capacity": {
                    "workloads": self.capacity,
                    "memory": format!("{}Ki", self.memory / 1024),
                    "instances": self.instances,
                },
                "interfaces": interfaces,
                "workloads": workloads,
                "version": env!("CARGO_PKG_VERSION"),
            }
        });
        self.api
            .patch_status(&self.name, &self.params(), &Patch::Apply(host))
            .await?;
        *self.applied_ready.lock() = Some((ready, since));
        Ok(())
    }

    fn params(&self) -> PatchParams {
        PatchParams::apply(HOST_AGENT_FIELD_MANAGER).force()
    }
}
