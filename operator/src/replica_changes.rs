//! Replicas this operator has just created or deleted that the Workload cache may not show yet.
//! Without this overlay, a reconciliation between a create and its watch event would count one
//! replica short and create it again (a ReplicaSet's "expectations").

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::rollout::Replica;

/// How long a change is remembered at most; the cache catches up well within that.
const REMEMBER_FOR: Duration = Duration::from_secs(30);

/// Pending changes, per WorkloadDeployment (`namespace/name`).
#[derive(Debug, Default)]
pub struct ReplicaChanges {
    by_deployment: HashMap<String, Pending>,
}

#[derive(Debug)]
struct Pending {
    created: Vec<Replica>,
    deleted: Vec<String>,
    at: Instant,
}

impl ReplicaChanges {
    fn pending(&mut self, deployment: &str, now: Instant) -> &mut Pending {
        let pending = self
            .by_deployment
            .entry(deployment.to_owned())
            .or_insert_with(|| Pending {
                created: vec![],
                deleted: vec![],
                at: now,
            });
        pending.at = now;
        pending
    }

    /// Remembers a replica just created.
    pub fn created(&mut self, deployment: &str, replica: Replica, now: Instant) {
        self.pending(deployment, now).created.push(replica);
    }

    /// Remembers a replica just deleted.
    pub fn deleted(&mut self, deployment: &str, name: String, now: Instant) {
        self.pending(deployment, now).deleted.push(name);
    }

    /// `cached` corrected by the pending changes: created replicas the cache lacks are added,
    /// deleted ones it still shows live are marked terminating. Changes the cache shows are
    /// forgotten.
    pub fn correct(
        &mut self,
        deployment: &str,
        mut cached: Vec<Replica>,
        now: Instant,
    ) -> Vec<Replica> {
        let Some(pending) = self.by_deployment.get_mut(deployment) else {
            return cached;
        };
        if now.duration_since(pending.at) >= REMEMBER_FOR {
            self.by_deployment.remove(deployment);
            return cached;
        }
        pending
            .created
            .retain(|r| !cached.iter().any(|c| c.name == r.name));
        pending.deleted.retain(|name| {
            cached
                .iter_mut()
                .find(|c| &c.name == name)
                .is_some_and(|c| {
                    let behind = !c.terminating;
                    c.terminating = true;
                    behind
                })
        });
        cached.extend(pending.created.iter().cloned());
        if pending.created.is_empty() && pending.deleted.is_empty() {
            self.by_deployment.remove(deployment);
        }
        cached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(name: &str, terminating: bool) -> Replica {
        Replica {
            name: name.into(),
            hash: "h".into(),
            ready: false,
            host: None,
            terminating,
            created: None,
        }
    }

    #[test]
    fn overlays_until_the_cache_catches_up() {
        let now = Instant::now();
        let mut changes = ReplicaChanges::default();
        changes.created("ns/d", replica("new", false), now);
        changes.deleted("ns/d", "gone".into(), now);

        let seen = changes.correct("ns/d", vec![replica("gone", false)], now);
        assert_eq!(seen, [replica("gone", true), replica("new", false)]);

        let caught_up = vec![replica("gone", true), replica("new", false)];
        assert_eq!(changes.correct("ns/d", caught_up.clone(), now), caught_up);
        assert!(changes.by_deployment.is_empty());
    }

    #[test]
    fn forgets_after_a_while() {
        let now = Instant::now();
        let mut changes = ReplicaChanges::default();
        changes.created("ns/d", replica("new", false), now);
        assert!(
            changes
                .correct("ns/d", vec![], now + REMEMBER_FOR)
                .is_empty()
        );
    }
}
