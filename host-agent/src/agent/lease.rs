//! The host-agent's heartbeat: a `coordination.k8s.io` Lease renewed every third of its
//! duration, like the kubelet's node lease.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use weft_api::labels::{HOST_AGENT_FIELD_MANAGER, HOST_LEASE_PREFIX};

#[derive(Clone)]
pub struct Heartbeat {
    api: Api<Lease>,
    name: String,
    holder: String,
    duration: Duration,
}

impl Heartbeat {
    pub fn new(client: kube::Client, namespace: &str, host: &str, duration: Duration) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: format!("{HOST_LEASE_PREFIX}{host}"),
            holder: host.to_string(),
            duration,
        }
    }

    /// Renews until aborted. A failed renewal is retried on the next tick: an API server that
    /// restarts only costs the beats it missed.
    pub async fn run(self) {
        let mut every = tokio::time::interval(self.duration / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(err) = self.renew().await {
                tracing::warn!(lease = %self.name, %err, "could not renew the host lease");
            }
        }
    }

    async fn renew(&self) -> kube::Result<()> {
        let lease = serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": { "name": self.name },
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.duration.as_secs().max(1),
                "renewTime": k8s_openapi::jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string(),
            }
        });
        self.api
            .patch(
                &self.name,
                &PatchParams::apply(HOST_AGENT_FIELD_MANAGER).force(),
                &Patch::Apply(lease),
            )
            .await
            .map(drop)
    }

    /// Deletes the Lease on a clean exit, so nothing waits for it to lapse.
    pub async fn release(&self) {
        if let Err(err) = self.api.delete(&self.name, &DeleteParams::default()).await {
            tracing::warn!(lease = %self.name, %err, "could not delete the host lease");
        }
    }
}
