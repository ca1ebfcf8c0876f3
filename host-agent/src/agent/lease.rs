//! The host-agent's heartbeat: a `coordination.k8s.io` Lease renewed every third of its
//! duration, like the kubelet's node lease, and the fence that goes with it.
//!
//! Fencing: the operator moves a host's Workloads once it has not seen the Lease renewed for a
//! duration plus a margin, by its own clock (`operator/src/lease_clock.rs`). An agent cut off
//! from the API server must have stopped them by then, or a service runs twice. So the agent
//! fences itself two thirds of a duration after the last renewal that succeeded, counted from
//! when that renewal was sent (the operator cannot have seen it earlier), and lifts the fence
//! at the next successful renewal.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use weft_api::labels::{HOST_AGENT_FIELD_MANAGER, HOST_LEASE_PREFIX};
use weft_daemon::lease_timing::{self, LeaseTiming};

#[derive(Clone)]
pub struct Heartbeat {
    api: Api<Lease>,
    name: String,
    holder: String,
    timing: LeaseTiming,
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
            timing: LeaseTiming::new(duration),
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
        let duration = self.timing.duration();
        tracing::info!(lease = %self.name, %holder, wait = ?duration, "the host Lease has a holder; watching whether it is still renewed");
        let seen = spec.renew_time;
        let deadline = tokio::time::Instant::now() + duration;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(duration / 6).await;
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

    /// Renews until aborted, and keeps `fenced` true while the Lease may have run out. A failed
    /// renewal is retried on the next tick: an API server that restarts only costs the beats it
    /// missed (and, past two thirds of a duration, the fence).
    pub async fn run(self, fenced: watch::Sender<bool>) {
        let beat = self.timing.renew_every();
        let (renewed, mut last_renewal) = watch::channel(Instant::now());
        let renewals = async {
            let mut every = tokio::time::interval(beat);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let sent = Instant::now();
                // A request that hangs (a partition that drops packets) must not hold up the
                // next beat.
                match tokio::time::timeout(beat, self.renew()).await {
                    Ok(Ok(())) => {
                        renewed.send_replace(sent);
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(lease = %self.name, %err, "could not renew the host lease")
                    }
                    Err(_) => tracing::warn!(
                        lease = %self.name,
                        "could not renew the host lease: no answer within {beat:?}"
                    ),
                }
            }
        };
        let fence_after = self.timing.give_up_after();
        let watchdog = async {
            loop {
                let deadline = *last_renewal.borrow_and_update() + fence_after;
                if Instant::now() < deadline && fenced.send_if_modified(std::mem::take) {
                    tracing::info!(lease = %self.name, "host lease renewed again: fence lifted");
                }
                tokio::select! {
                    () = tokio::time::sleep_until(deadline), if !*fenced.borrow() => {
                        tracing::warn!(
                            lease = %self.name,
                            "fenced: the host lease was not renewed for {fence_after:?}; \
                             stopping every Workload before the operator may move them"
                        );
                        fenced.send_replace(true);
                    }
                    changed = last_renewal.changed() => if changed.is_err() { return },
                }
            }
        };
        futures::join!(renewals, watchdog);
    }

    async fn renew(&self) -> kube::Result<()> {
        let lease = serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": { "name": self.name },
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.timing.seconds(),
                "renewTime": lease_timing::now(),
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
