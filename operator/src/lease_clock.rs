//! When a host's heartbeat Lease runs out, measured by this operator's own clock.
//!
//! A Lease's `renewTime` is written by the host-agent's clock; comparing it with the operator's
//! would let clock skew move Workloads while their host still runs them. So, as the kubelet's
//! node lifecycle controller does, the operator notes *when it saw* each renewal (a change of
//! `renewTime`) and counts the lease duration plus [`MARGIN`] from that moment. The host-agent
//! stops its Workloads two thirds of a duration after its last successful renewal (see
//! `host-agent/src/agent/lease.rs`), so a Workload never runs on both hosts.
//!
//! Whenever the watch is re-listed or fails (an API server outage, a new leader), every Lease
//! counts as seen anew: agents that could not renew during the outage get a full duration to do
//! so before anything moves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::runtime::watcher;

/// Added to a Lease's duration before its host counts as gone: slack for the host-agent to
/// finish stopping its Workloads after it fenced itself.
pub const MARGIN: Duration = Duration::from_secs(1);

/// What a host's heartbeat Lease says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// Seen renewed recently enough; runs out after `remaining`.
    Valid { remaining: Duration },
    /// Not seen renewed within its duration plus the margin (or never renewed).
    Expired,
    /// No Lease exists.
    Missing,
}

#[derive(Default)]
struct Seen {
    renew_time: Option<MicroTime>,
    at: Option<Instant>,
}

/// The last renewal of each Lease this operator saw, by name, and when the watch last
/// re-listed.
pub struct LeaseClock {
    seen: Mutex<HashMap<String, Seen>>,
    resynced: Mutex<Instant>,
}

impl Default for LeaseClock {
    fn default() -> Self {
        Self {
            seen: Mutex::default(),
            resynced: Mutex::new(Instant::now()),
        }
    }
}

impl LeaseClock {
    /// Feeds one event of the Lease watch.
    pub fn watched(&self, event: &Result<watcher::Event<Lease>, watcher::Error>) {
        match event {
            Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) => {
                self.observe(lease, Instant::now());
            }
            Ok(watcher::Event::Delete(lease)) => {
                self.seen.lock().expect("seen").remove(&lease.name_any());
            }
            Ok(watcher::Event::Init) | Err(_) => self.resync(Instant::now()),
            Ok(watcher::Event::InitDone) => {}
        }
    }

    /// Every Lease counts as renewed at `now`.
    fn resync(&self, now: Instant) {
        *self.resynced.lock().expect("resynced") = now;
    }

    /// Notes `lease` as seen at `now`: a new `renewTime` restarts its clock.
    fn observe(&self, lease: &Lease, now: Instant) -> Instant {
        let renew_time = lease.spec.as_ref().and_then(|s| s.renew_time.clone());
        let mut seen = self.seen.lock().expect("seen");
        let entry = seen.entry(lease.name_any()).or_default();
        if entry.at.is_none() || entry.renew_time != renew_time {
            entry.renew_time = renew_time;
            entry.at = Some(now);
        }
        entry.at.unwrap_or(now)
    }

    /// The state of `lease` now (a Lease read from the API server counts as seen).
    pub fn state(&self, lease: Option<&Lease>) -> LeaseState {
        self.state_at(lease, Instant::now())
    }

    fn state_at(&self, lease: Option<&Lease>, now: Instant) -> LeaseState {
        let Some(lease) = lease else {
            return LeaseState::Missing;
        };
        let Some(spec) = lease.spec.as_ref() else {
            return LeaseState::Expired;
        };
        let (Some(_), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
            return LeaseState::Expired;
        };
        let seen = self.observe(lease, now);
        match self.deadline(seen, seconds).checked_duration_since(now) {
            Some(remaining) if !remaining.is_zero() => LeaseState::Valid { remaining },
            _ => LeaseState::Expired,
        }
    }

    /// When a Lease of `seconds`, last seen renewed at `seen`, runs out: counted from the later
    /// of that sighting and the last resync.
    fn deadline(&self, seen: Instant, seconds: i32) -> Instant {
        let since = seen.max(*self.resynced.lock().expect("resynced"));
        since + Duration::from_secs(u64::try_from(seconds).unwrap_or(0)) + MARGIN
    }

    /// When (by the operator's wall clock) `lease` ran out, if it has.
    pub fn expired_at(&self, lease: &Lease) -> Option<Timestamp> {
        let now = Instant::now();
        let seconds = lease.spec.as_ref()?.lease_duration_seconds?;
        let seen = self.seen.lock().expect("seen").get(&lease.name_any())?.at?;
        let ago = now.checked_duration_since(self.deadline(seen, seconds))?;
        Timestamp::now()
            .checked_sub(SignedDuration::try_from(ago).ok()?)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn lease(renewed_second: i64) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("weft-host-a".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(Timestamp::from_second(renewed_second).unwrap())),
                lease_duration_seconds: Some(6),
                ..Default::default()
            }),
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_renewal_time_written_by_the_host_is_not_compared_with_this_clock() {
        let clock = LeaseClock::default();
        let t0 = *clock.resynced.lock().unwrap() + secs(10.0);
        // Renewed "in 1970" by a host whose clock is far behind: still valid, counted from
        // when it was seen.
        clock.observe(&lease(1), t0);
        assert_eq!(
            clock.state_at(Some(&lease(1)), t0 + secs(2.0)),
            LeaseState::Valid {
                remaining: secs(5.0)
            }
        );
        assert_eq!(
            clock.state_at(Some(&lease(1)), t0 + secs(7.0)),
            LeaseState::Expired
        );
    }

    #[test]
    fn a_new_renew_time_restarts_the_clock_and_the_same_one_does_not() {
        let clock = LeaseClock::default();
        let t0 = *clock.resynced.lock().unwrap() + secs(10.0);
        clock.observe(&lease(100), t0);
        clock.observe(&lease(100), t0 + secs(5.0));
        assert_eq!(
            clock.state_at(Some(&lease(100)), t0 + secs(7.5)),
            LeaseState::Expired
        );
        // A renewal read fresh from the API server counts as seen now.
        assert_eq!(
            clock.state_at(Some(&lease(102)), t0 + secs(8.0)),
            LeaseState::Valid {
                remaining: secs(7.0)
            }
        );
    }

    #[test]
    fn after_a_relist_every_lease_gets_a_full_duration() {
        let clock = LeaseClock::default();
        let t0 = *clock.resynced.lock().unwrap() + secs(10.0);
        clock.observe(&lease(100), t0);
        // The API server was away for a minute; the watch comes back with a relist.
        clock.resync(t0 + secs(60.0));
        assert_eq!(
            clock.state_at(Some(&lease(100)), t0 + secs(61.0)),
            LeaseState::Valid {
                remaining: secs(6.0)
            }
        );
        assert_eq!(
            clock.state_at(Some(&lease(100)), t0 + secs(67.0)),
            LeaseState::Expired
        );
    }

    #[test]
    fn missing_and_never_renewed() {
        let clock = LeaseClock::default();
        assert_eq!(clock.state(None), LeaseState::Missing);
        assert_eq!(clock.state(Some(&Lease::default())), LeaseState::Expired);
    }
}
