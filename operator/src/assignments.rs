//! How many Workloads each Host has, counted by the `weft.dev/host` label, including the labels
//! this operator has just set but its cache has not seen yet. Without that overlay, Workloads
//! scheduled in quick succession would all see the same "least loaded" Host.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;
use weft_api::Workload;

use crate::placements::{Placed, Placements};

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

impl Load {
    fn add(&mut self, placed: &Placed, sibling: u32) {
        self.workloads += 1;
        self.memory = self.memory.saturating_add(placed.memory);
        self.instances = self.instances.saturating_add(placed.instances);
        self.siblings += sibling;
    }

    fn remove(&mut self, placed: &Placed, sibling: u32) {
        self.workloads = self.workloads.saturating_sub(1);
        self.memory = self.memory.saturating_sub(placed.memory);
        self.instances = self.instances.saturating_sub(placed.instances);
        self.siblings = self.siblings.saturating_sub(sibling);
    }
}

/// Label changes made by this operator that the Workload cache may not show yet.
#[derive(Debug, Default)]
pub struct Assignments {
    recent: HashMap<ObjectRef<Workload>, Recent>,
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
    /// Remembers that the Workload `key` now goes to `host`, by the patch that made its
    /// version `patched_to` (none while the patch is under way).
    pub fn record(
        &mut self,
        key: &ObjectRef<Workload>,
        patched_to: Option<String>,
        host: Option<String>,
        now: Instant,
    ) {
        let recent = Recent {
            host,
            patched_to,
            at: now,
        };
        self.recent.insert(key.clone(), recent);
    }

    /// Notes the version the label patch of `key` produced.
    pub fn patched(&mut self, key: &ObjectRef<Workload>, version: Option<String>) {
        if let Some(recent) = self.recent.get_mut(key) {
            recent.patched_to = version;
        }
    }

    /// Forgets the assignment of `key`: its label patch failed.
    pub fn forget(&mut self, key: &ObjectRef<Workload>) {
        self.recent.remove(key);
    }

    /// What each Host has assigned besides the Workload `own` being placed, with the
    /// placements index corrected by recent assignments; forgets assignments the index has
    /// caught up with. Replicas of the WorkloadDeployment with uid `deployment` count as
    /// siblings. Costs the number of Hosts and recent assignments, not of Workloads.
    ///
    /// `own` counts nowhere: the Host it is on is one of its choices, not a rival for it (counted
    /// there, a Workload whose status does not show its Host yet found that Host full of itself
    /// and gave its place away). A Workload whose move is under way counts on both Hosts until
    /// the patch succeeds: a patch that fails leaves it where it was, and capacity it would have
    /// freed must not be given away meanwhile.
    pub fn load(
        &mut self,
        placements: &Placements,
        own: &ObjectRef<Workload>,
        deployment: Option<&str>,
        now: Instant,
    ) -> HashMap<String, Load> {
        let sibling = |placed: &Placed| {
            u32::from(deployment.is_some() && placed.deployment.as_deref() == deployment)
        };
        let mut load = placements.load(deployment);
        if let Some(placed) = placements.get(own)
            && let Some(host) = &placed.host
        {
            load.entry(host.clone())
                .or_default()
                .remove(placed, sibling(placed));
        }
        self.recent.retain(|key, recent| {
            if now.duration_since(recent.at) >= REMEMBER_FOR {
                return false;
            }
            // Not (or no longer) in the cache: it counts nowhere, as before it was placed.
            let Some(placed) = placements.get(key) else {
                return true;
            };
            if recent.patched_to == placed.version || recent.host == placed.host {
                return false;
            }
            if key == own {
                return true;
            }
            // The cache is behind: count the Workload where it was just put.
            if let (Some(host), Some(_)) = (&placed.host, &recent.patched_to) {
                load.entry(host.clone())
                    .or_default()
                    .remove(placed, sibling(placed));
            }
            if let Some(host) = &recent.host {
                load.entry(host.clone())
                    .or_default()
                    .add(placed, sibling(placed));
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

    fn key(name: &str) -> ObjectRef<Workload> {
        ObjectRef::new(name).within("ns")
    }

    fn count(load: &HashMap<String, Load>, host: &str) -> Option<u32> {
        load.get(host).map(|l| l.workloads)
    }

    #[test]
    fn overlay_until_cache_catches_up() {
        let now = Instant::now();
        let mut assignments = Assignments::default();
        let a = workload("a", "1", Some("h1"), None);
        let b = workload("b", "1", None, None);
        assignments.record(&key("b"), Some("2".into()), Some("h2".into()), now);

        let own = key("x");
        let load = index(&[a.clone(), b]).read(|p| assignments.load(p, &own, None, now));
        assert_eq!(count(&load, "h1"), Some(1));
        assert_eq!(
            count(&load, "h2"),
            Some(1),
            "cache is behind: use what was patched"
        );

        // The cache is further behind than the version the patch started from (the finalizer
        // patch it has not seen either): still the overlay.
        let b_older = workload("b", "0", None, None);
        let load = index(&[a.clone(), b_older]).read(|p| assignments.load(p, &own, None, now));
        assert_eq!(count(&load, "h2"), Some(1));

        // A move the cache has not seen: counted on the new Host, not the old.
        let c = workload("c", "5", Some("h1"), Some("d"));
        assignments.record(&key("c"), Some("6".into()), Some("h2".into()), now);
        let load = index(&[a.clone(), c]).read(|p| assignments.load(p, &own, Some("d"), now));
        assert_eq!(count(&load, "h1"), Some(1));
        assert_eq!(load["h1"].siblings, 0);
        assert_eq!(load["h2"].siblings, 1);

        // The cache shows the patched versions: trust it and forget the overlay.
        let b_new = workload("b", "2", Some("h1"), None);
        let c_new = workload("c", "6", Some("h2"), Some("d"));
        let load = index(&[a, b_new, c_new]).read(|p| assignments.load(p, &own, None, now));
        assert_eq!(count(&load, "h1"), Some(2));
        assert_eq!(count(&load, "h2"), Some(1));
        assert!(assignments.recent.is_empty());
    }

    #[test]
    fn the_workload_placed_does_not_count_against_its_own_host() {
        let now = Instant::now();
        let mut assignments = Assignments::default();
        let placed = [
            workload("a", "1", Some("h1"), None),
            workload("b", "1", Some("h1"), None),
            workload("x", "1", Some("h1"), None),
        ];
        let load = index(&placed).read(|p| assignments.load(p, &key("x"), None, now));
        assert_eq!(count(&load, "h1"), Some(2));
        assert_eq!(load["h1"].memory, 2 * placed[0].spec.reserved_memory());

        // Nor where its own earlier patch (not yet in the cache) put it.
        assignments.record(&key("x"), Some("2".into()), Some("h2".into()), now);
        let load = index(&placed).read(|p| assignments.load(p, &key("x"), None, now));
        assert_eq!((count(&load, "h1"), count(&load, "h2")), (Some(2), None));
        // Others still see it there.
        let load = index(&placed).read(|p| assignments.load(p, &key("y"), None, now));
        assert_eq!((count(&load, "h1"), count(&load, "h2")), (Some(2), Some(1)));
    }

    #[test]
    fn a_move_under_way_frees_nothing_until_it_succeeds() {
        let now = Instant::now();
        let mut assignments = Assignments::default();
        let placed = [workload("a", "1", Some("h1"), None)];
        let own = key("y");
        // Taken off h1 (a full Host, say), patch not yet answered: h1 keeps counting it.
        assignments.record(&key("a"), None, None, now);
        let load = index(&placed).read(|p| assignments.load(p, &own, None, now));
        assert_eq!(count(&load, "h1"), Some(1));
        // Moved to h2, patch under way: it counts on both.
        assignments.record(&key("a"), None, Some("h2".into()), now);
        let load = index(&placed).read(|p| assignments.load(p, &own, None, now));
        assert_eq!((count(&load, "h1"), count(&load, "h2")), (Some(1), Some(1)));
        // The patch succeeded: h1 is free.
        assignments.patched(&key("a"), Some("2".into()));
        let load = index(&placed).read(|p| assignments.load(p, &own, None, now));
        assert_eq!((count(&load, "h1"), count(&load, "h2")), (Some(0), Some(1)));
        // A patch that failed is forgotten: a stays on h1.
        assignments.record(&key("a"), None, Some("h3".into()), now);
        assignments.forget(&key("a"));
        let load = index(&placed).read(|p| assignments.load(p, &own, None, now));
        assert_eq!((count(&load, "h1"), count(&load, "h3")), (Some(1), None));
    }

    #[test]
    fn forgets_old_assignments() {
        let now = Instant::now();
        let mut assignments = Assignments::default();
        assignments.record(&key("b"), Some("1".into()), Some("h2".into()), now);
        let b = workload("b", "1", None, None);
        let load = index(&[b]).read(|p| assignments.load(p, &key("x"), None, now + REMEMBER_FOR));
        assert!(load.is_empty());
        assert!(assignments.recent.is_empty());
    }
}
