//! How many Workloads each Host has, counted by the `weft.dev/host` label, including the labels
//! this operator has just set but its cache has not seen yet. Without that overlay, Workloads
//! scheduled in quick succession would all see the same "least loaded" Host.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use crate::placements::Placements;

/// How long an assignment is remembered at most; the cache catches up well within that.
const REMEMBER_FOR: Duration = Duration::from_secs(30);

/// What is assigned to one Host: how many Workloads, the memory they reserve, and how many of
/// them share a claimant with the Workload being placed (replicas of its WorkloadDeployment).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    pub workloads: u32,
    pub memory: u64,
    pub instances: u64,
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
    /// The `resourceVersion` the patch produced (none while it is under way): until the cache
    /// shows it (or the label it set), the cache is behind, however far. A version before the patch is not always the one the
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

    /// Notes the version the label patch of `namespace/name` produced.
    pub fn patched(&mut self, namespace: &str, name: &str, version: Option<String>) {
        if let Some(recent) = self
            .recent
            .get_mut(&(namespace.to_owned(), name.to_owned()))
        {
            recent.patched_to = version;
        }
    }

    /// Forgets the assignment of `namespace/name`: its label patch failed.
    pub fn forget(&mut self, namespace: &str, name: &str) {
        self.recent.remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// What each Host has assigned, with the placements index corrected by recent
    /// assignments; forgets assignments the index has caught up with. Replicas of the
    /// WorkloadDeployment with uid `deployment` count as siblings. Costs the number of Hosts
    /// and recent assignments, not of Workloads.
    pub fn load(
        &mut self,
        placements: &Placements,
        deployment: Option<&str>,
        now: Instant,
    ) -> HashMap<String, Load> {
        let mut load = placements.load(deployment);
        self.recent.retain(|(namespace, name), recent| {
            if now.duration_since(recent.at) >= REMEMBER_FOR {
                return false;
            }
            // Not (or no longer) in the cache: it counts nowhere, as before it was placed.
            let Some(placed) = placements.get(&ObjectRef::new(name).within(namespace)) else {
                return true;
            };
            if recent.patched_to == placed.version || recent.host == placed.host {
                return false;
            }
            // The cache is behind: count the Workload where it was just put.
            let sibling =
                u32::from(deployment.is_some() && placed.deployment.as_deref() == deployment);
            if let Some(host) = &placed.host {
                let entry = load.entry(host.clone()).or_default();
                entry.workloads = entry.workloads.saturating_sub(1);
                entry.memory = entry.memory.saturating_sub(placed.memory);
                entry.instances = entry.instances.saturating_sub(placed.instances);
                entry.siblings = entry.siblings.saturating_sub(sibling);
            }
            if let Some(host) = &recent.host {
                let entry = load.entry(host.clone()).or_default();
                entry.workloads += 1;
                entry.memory = entry.memory.saturating_add(placed.memory);
                entry.instances = entry.instances.saturating_add(placed.instances);
                entry.siblings += sibling;
            }
            true
        });
        load
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placements::PlacementsIndex;
    use crate::placements::tests::workload;
    use kube::runtime::watcher::Event;

    fn index(workloads: &[weft_api::Workload]) -> PlacementsIndex {
        let index = PlacementsIndex::default();
        for w in workloads {
            index.observe(&Event::Apply(w.clone()));
        }
        index
    }

    #[test]
    fn overlay_until_cache_catches_up() {
        let now = Instant::now();
        let mut assignments = Assignments::default();
        let a = workload("a", "1", Some("h1"), None);
        let b = workload("b", "1", None, None);
        assignments.record("ns", "b", Some("2".into()), Some("h2".into()), now);

        let count = |load: &HashMap<String, Load>, host: &str| load.get(host).map(|l| l.workloads);
        let load = index(&[a.clone(), b]).read(|p| assignments.load(p, None, now));
        assert_eq!(count(&load, "h1"), Some(1));
        assert_eq!(
            count(&load, "h2"),
            Some(1),
            "cache is behind: use what was patched"
        );

        // The cache is further behind than the version the patch started from (the finalizer
        // patch it has not seen either): still the overlay.
        let b_older = workload("b", "0", None, None);
        let load = index(&[a.clone(), b_older]).read(|p| assignments.load(p, None, now));
        assert_eq!(count(&load, "h2"), Some(1));

        // A move the cache has not seen: counted on the new Host, not the old.
        let c = workload("c", "5", Some("h1"), Some("d"));
        assignments.record("ns", "c", Some("6".into()), Some("h2".into()), now);
        let load = index(&[a.clone(), c]).read(|p| assignments.load(p, Some("d"), now));
        assert_eq!(count(&load, "h1"), Some(1));
        assert_eq!(load["h1"].siblings, 0);
        assert_eq!(load["h2"].siblings, 1);

        // The cache shows the patched versions: trust it and forget the overlay.
        let b_new = workload("b", "2", Some("h1"), None);
        let c_new = workload("c", "6", Some("h2"), Some("d"));
        let load = index(&[a, b_new, c_new]).read(|p| assignments.load(p, None, now));
        assert_eq!(count(&load, "h1"), Some(2));
        assert_eq!(count(&load, "h2"), Some(1));
        assert!(assignments.recent.is_empty());
    }

    #[test]
    fn forgets_old_assignments() {
        let now = Instant::now();
        let mut assignments = Assignments::default();
        assignments.record("ns", "b", Some("1".into()), Some("h2".into()), now);
        let b = workload("b", "1", None, None);
        let load = index(&[b]).read(|p| assignments.load(p, None, now + REMEMBER_FOR));
        assert!(load.is_empty());
        assert!(assignments.recent.is_empty());
    }
}
