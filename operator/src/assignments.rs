//! How many Workloads each Host has, counted by the `weft.dev/host` label, including the labels
//! this operator has just set but its cache has not seen yet. Without that overlay, Workloads
//! scheduled in quick succession would all see the same "least loaded" Host.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use weft_api::Workload;
use weft_api::labels::HOST_LABEL;

/// How long an assignment is remembered at most; the cache catches up well within that.
const REMEMBER_FOR: Duration = Duration::from_secs(30);

/// What is assigned to one Host: how many Workloads, the memory they reserve, and how many of
/// them share a claimant with the Workload being placed (replicas of its WorkloadDeployment).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    pub workloads: u32,
    pub memory: u64,
    pub siblings: u32,
}

/// Label changes made by this operator that the Workload cache may not show yet.
#[derive(Debug, Default)]
pub struct Assignments {
    recent: HashMap<(String, String), Recent>,
}

#[derive(Debug)]
struct Recent {
    host: Option<String>,
    /// The `resourceVersion` the patch produced: until the cache shows it (or the label it set),
    /// the cache is behind, however far. A version before the patch is not always the one the
    /// patch started from: the finalizer patch comes first, and the cache may not show it yet.
    patched_to: Option<String>,
    at: Instant,
}

impl Assignments {
    /// Remembers that the Workload `namespace/name` now goes to `host`, by the patch that made
    /// its version `patched_to`.
    pub fn record(
        &mut self,
        namespace: &str,
        name: &str,
        patched_to: Option<String>,
        host: Option<String>,
        now: Instant,
    ) {
        self.recent.insert(
            (namespace.to_owned(), name.to_owned()),
            Recent {
                host,
                patched_to,
                at: now,
            },
        );
    }

    /// What each Host has assigned, with the cache corrected by recent assignments; forgets
    /// assignments the cache has caught up with. Replicas of the WorkloadDeployment with uid
    /// `deployment` count as siblings.
    pub fn load<'a>(
        &mut self,
        workloads: impl IntoIterator<Item = &'a Workload>,
        deployment: Option<&str>,
        now: Instant,
    ) -> HashMap<String, Load> {
        self.recent
            .retain(|_, recent| now.duration_since(recent.at) < REMEMBER_FOR);
        let mut load: HashMap<String, Load> = HashMap::new();
        for workload in workloads {
            let key = (
                workload.namespace().unwrap_or_default(),
                workload.name_any(),
            );
            let cached = workload.labels().get(HOST_LABEL).cloned();
            let host = match self.recent.get(&key) {
                Some(recent)
                    if recent.patched_to == workload.resource_version()
                        || recent.host == cached =>
                {
                    self.recent.remove(&key);
                    cached
                }
                Some(recent) => recent.host.clone(),
                None => cached,
            };
            if let Some(host) = host {
                let entry = load.entry(host).or_default();
                entry.workloads += 1;
                entry.memory = entry.memory.saturating_add(workload.spec.reserved_memory());
                if deployment.is_some()
                    && workload.deployment_owner().map(|o| o.uid.as_str()) == deployment
                {
                    entry.siblings += 1;
                }
            }
        }
        load
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn workload(name: &str, version: &str, host: Option<&str>) -> Workload {
        Workload {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                labels: host.map(|h| [(HOST_LABEL.to_owned(), h.to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn overlay_until_cache_catches_up() {
        let now = Instant::now();
        let mut assignments = Assignments::default();
        let a = workload("a", "1", Some("h1"));
        let b = workload("b", "1", None);
        assignments.record("ns", "b", Some("2".into()), Some("h2".into()), now);

        let count = |load: &HashMap<String, Load>, host: &str| load.get(host).map(|l| l.workloads);
        let load = assignments.load([&a, &b], None, now);
        assert_eq!(count(&load, "h1"), Some(1));
        assert_eq!(
            count(&load, "h2"),
            Some(1),
            "cache is behind: use what was patched"
        );

        // The cache is further behind than the version the patch started from (the finalizer
        // patch it has not seen either): still the overlay.
        let b_older = workload("b", "0", None);
        let load = assignments.load([&a, &b_older], None, now);
        assert_eq!(count(&load, "h2"), Some(1));

        // The cache shows the patched version: trust it and forget the overlay.
        let b_new = workload("b", "2", Some("h1"));
        let load = assignments.load([&a, &b_new], None, now);
        assert_eq!(count(&load, "h1"), Some(2));
        assert_eq!(count(&load, "h2"), None);
        assert!(assignments.recent.is_empty());
    }

    #[test]
    fn forgets_old_assignments() {
        let now = Instant::now();
        let mut assignments = Assignments::default();
        assignments.record("ns", "b", Some("1".into()), Some("h2".into()), now);
        let b = workload("b", "1", None);
        let load = assignments.load([&b], None, now + REMEMBER_FOR);
        assert!(load.is_empty());
    }
}
