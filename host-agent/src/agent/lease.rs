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

/// Another host-agent already runs under this host name.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "another host-agent already runs as {host}: its Lease {lease} is held by {holder} and was \
         renewed while this one watched it; give each host-agent its own --host-name"
    )]
    Held {
        host: String,
        lease: String,
        holder: String,
    },
    #[error("reading the host Lease: {0}")]
    Kube(#[from] kube::Error),
}

impl Heartbeat {
    pub fn new(client: kube::Client, namespace: &str, host: &str, duration: Duration) -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Self {
            api: Api::namespaced(client, namespace),
            name: format!("{HOST_LEASE_PREFIX}{host}"),
            // This process, not just the name: two agents with one name must tell each other
            // apart.
            holder: format!("{host}/{}@{started}", std::process::id()),
            duration,
        }
    }

    /// Makes sure no other live host-agent holds this host's Lease before this one takes it. A
    /// Lease held by someone else is watched for one lease duration: renewed meanwhile, the
    /// name is taken; left alone, its holder is gone (a crash) and this agent succeeds it. The
    /// verdict rests on whether the Lease changes, not on comparing clocks.
    pub async fn claim(&self) -> Result<(), ClaimError> {
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.unwrap_or_default();
        let holder = spec.holder_identity.unwrap_or_default();
        if holder.is_empty() || holder == self.holder {
            return Ok(());
        }
        tracing::info!(lease = %self.name, %holder, wait = ?self.duration, "the host Lease has a holder; watching whether it is still renewed");
        let seen = spec.renew_time;
        let deadline = tokio::time::Instant::now() + self.duration;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(self.duration / 6).await;
            match self.api.get_opt(&self.name).await? {
                None => return Ok(()),
                Some(now)
                    if now.spec.as_ref().and_then(|s| s.renew_time.as_ref()) != seen.as_ref() =>
                {
                    let host = self.name.trim_start_matches(HOST_LEASE_PREFIX).to_owned();
                    return Err(ClaimError::Held {
                        host,
                        lease: self.name.clone(),
                        holder,
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
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
