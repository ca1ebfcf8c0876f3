//! The timing of a `coordination.k8s.io` Lease that a daemon holds: the operator's leader Lease
//! and each host-agent's heartbeat follow the same thirds as the kubelet's node lease and
//! client-go's leader election.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    duration: Duration,
}

impl LeaseTiming {
    pub fn new(duration: Duration) -> Self {
        Self { duration }
    }

    pub fn duration(self) -> Duration {
        self.duration
    }

    /// `leaseDurationSeconds`: whole seconds, at least one.
    pub fn seconds(self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// How often the holder renews, and how long one renewal may take: a third, so two
    /// renewals may fail before the Lease lapses.
    pub fn renew_every(self) -> Duration {
        self.duration / 3
    }

    /// How long after the last renewal that succeeded (counted from when it was sent, as no one
    /// can have seen it earlier) the holder stops acting as one: the leader steps down, a
    /// host-agent fences. Two thirds: a third before anyone else may take over.
    pub fn give_up_after(self) -> Duration {
        self.duration * 2 / 3
    }
}

/// `renewTime` (or `acquireTime`) for now.
pub fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirds() {
        let timing = LeaseTiming::new(Duration::from_secs(6));
        assert_eq!(timing.renew_every(), Duration::from_secs(2));
        assert_eq!(timing.give_up_after(), Duration::from_secs(4));
        assert_eq!(timing.seconds(), 6);
        assert_eq!(LeaseTiming::new(Duration::from_millis(300)).seconds(), 1);
    }
}
