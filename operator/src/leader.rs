//! Leader election over a `coordination.k8s.io/v1` Lease: only the holder runs the controllers.
//!
//! A replica takes the Lease when it does not exist, is held by nobody or by itself, or has not
//! been renewed within its duration, and renews it every third of that duration. Writes use the
//! Lease's `resourceVersion`, so of two replicas racing for it one gets a conflict and stays
//! standby. A leader that cannot renew for two thirds of the duration gives up (the process exits
//! and is restarted), before another replica may take over.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;
use weft_daemon::lease_timing::{self, LeaseTiming};

use crate::admin::{Health, Role};
use crate::error::{Error, chain};

/// Name of the operator's leader Lease.
pub const LEASE_NAME: &str = "weft-operator";

/// This replica's view of the leader Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    namespace: String,
    identity: String,
    timing: LeaseTiming,
}

/// Whether a Lease held by `holder`, renewed at `renewed` for `duration_seconds`, may be taken by
/// `identity` at `now`.
pub fn may_acquire(
    holder: Option<&str>,
    renewed: Option<Timestamp>,
    duration_seconds: Option<i32>,
    identity: &str,
    now: Timestamp,
) -> bool {
    match holder {
        None | Some("") => true,
        Some(holder) if holder == identity => true,
        Some(_) => {
            let (Some(renewed), Some(seconds)) = (renewed, duration_seconds) else {
                return true;
            };
            renewed
                .checked_add(SignedDuration::from_secs(i64::from(seconds)))
                .is_ok_and(|expiry| expiry <= now)
        }
    }
}

impl LeaderElector {
    pub fn new(client: Client, namespace: &str, identity: String, duration: Duration) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            identity,
            timing: LeaseTiming::new(duration),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn describe(&self) -> String {
        format!("{}/{LEASE_NAME}", self.namespace)
    }

    fn retry_period(&self) -> Duration {
        self.timing.renew_every()
    }

    /// [`Self::try_acquire_or_renew`], bounded by the retry period: a stalled API server must not
    /// hold up the check on how long the Lease went unrenewed.
    async fn attempt(&self) -> Result<bool, Error> {
        tokio::time::timeout(self.retry_period(), self.try_acquire_or_renew())
            .await
            .unwrap_or_else(|_| {
                Err(Error::LeaseTimeout {
                    lease: self.describe(),
                    after: self.retry_period(),
                })
            })
    }

    async fn read(&self) -> Result<Option<Lease>, Error> {
        self.api
            .get_opt(LEASE_NAME)
            .await
            .map_err(Error::kube(format!(
                "reading the leader Lease {}",
                self.describe()
            )))
    }

    /// Tries once to take or renew the Lease; `Ok(true)` when this replica holds it afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, Error> {
        let now = lease_timing::now();
        let current = self.read().await?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAME.to_owned()),
                    namespace: Some(self.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.timing.seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now.clone()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                // Another replica created it first.
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(source) => Err(Error::Kube {
                    what: format!("creating the leader Lease {}", self.describe()),
                    source,
                }),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone();
        if !may_acquire(
            holder.as_deref(),
            spec.renew_time.as_ref().map(|t| t.0),
            spec.lease_duration_seconds,
            &self.identity,
            now.0,
        ) {
            return Ok(false);
        }
        if holder.as_deref() != Some(self.identity.as_str()) {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now.clone());
        spec.lease_duration_seconds = Some(self.timing.seconds());
        match self
            .api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            // Someone else wrote it since we read it.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(Error::Kube {
                what: format!("updating the leader Lease {}", self.describe()),
                source,
            }),
        }
    }

    /// Waits until this replica holds the Lease, retrying every third of its duration; reports
    /// standby to `health` once the API server answered.
    pub async fn acquire(&self, health: &Health) {
        let mut standby_logged = false;
        loop {
            match self.attempt().await {
                Ok(true) => {
                    tracing::info!(identity = %self.identity, lease = %self.describe(), "became the leader");
                    return;
                }
                Ok(false) if !standby_logged => {
                    health.set(Role::Standby);
                    tracing::info!(identity = %self.identity, lease = %self.describe(), "standing by: another replica is the leader");
                    standby_logged = true;
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(error = %chain(&error), "could not contend for the leader Lease");
                }
            }
            tokio::time::sleep(self.retry_period()).await;
        }
    }

    /// Renews the Lease until it is lost: returns an error when another replica holds it or no
    /// renewal succeeded for two thirds of its duration. Giving up before the Lease expires (as
    /// client-go's renew deadline does) leaves a margin in which this replica has stopped and no
    /// standby has started yet.
    pub async fn keep(&self) -> Error {
        let deadline = self.timing.give_up_after();
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.retry_period()).await;
            // The Lease was written no earlier than this instant: count from here.
            let started = Instant::now();
            match self.attempt().await {
                Ok(true) => last_renewal = started,
                Ok(false) => {
                    return Error::LostLeadership {
                        lease: self.describe(),
                        why: "another replica holds it".to_owned(),
                    };
                }
                Err(error) => {
                    tracing::warn!(error = %chain(&error), "could not renew the leader Lease");
                }
            }
            if last_renewal.elapsed() >= deadline {
                return Error::LostLeadership {
                    lease: self.describe(),
                    why: format!("not renewed for {:?}", last_renewal.elapsed()),
                };
            }
        }
    }

    /// Gives the Lease up (clears the holder) so a standby takes over without waiting for expiry.
    pub async fn release(&self) -> Result<(), Error> {
        let current = self.read().await?;
        let Some(mut lease) = current else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        self.api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await
            .map_err(Error::kube(format!(
                "releasing the leader Lease {}",
                self.describe()
            )))?;
        tracing::info!(lease = %self.describe(), "released the leader Lease");
        Ok(())
    }
}

/// This replica's identity: the Pod name (`POD_NAME`) or, outside a Pod, the hostname and the
/// process id.
pub fn identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "operator".to_owned());
    format!("{hostname}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    #[test]
    fn acquisition_rules() {
        assert!(may_acquire(None, None, None, "me", at(0)));
        assert!(may_acquire(Some(""), Some(at(0)), Some(10), "me", at(1)));
        assert!(may_acquire(Some("me"), Some(at(0)), Some(10), "me", at(1)));
        assert!(!may_acquire(
            Some("other"),
            Some(at(0)),
            Some(10),
            "me",
            at(9)
        ));
        assert!(may_acquire(
            Some("other"),
            Some(at(0)),
            Some(10),
            "me",
            at(10)
        ));
        assert!(may_acquire(Some("other"), None, Some(10), "me", at(0)));
    }
}
