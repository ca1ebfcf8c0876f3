//! Where each Workload is placed (its `weft.dev/host` label), kept from the Workload watch with
//! each Host's totals, so that placing one Workload costs the number of Hosts, not of Workloads,
//! and a Host's change finds its Workloads without a scan.

use std::collections::{HashMap, HashSet};

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use weft_api::Workload;
use weft_api::labels::HOST_LABEL;

use crate::assignments::Load;
use crate::workload_index::{Index, Indexed};

/// The placements of every Workload.
pub type PlacementsIndex = Indexed<Placements>;

/// What placing others needs to know of one Workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    /// Its host label, if any.
    pub host: Option<String>,
    pub memory: u64,
    pub instances: u64,
    /// The uid of its WorkloadDeployment, if it is a replica.
    pub deployment: Option<String>,
    /// The `resourceVersion` this was read at.
    pub version: Option<String>,
}

impl Placed {
    fn of(workload: &Workload) -> Self {
        Self {
            host: workload.labels().get(HOST_LABEL).cloned(),
            memory: workload.spec.reserved_memory(),
            instances: workload.spec.reserved_instances(),
            deployment: workload.deployment_owner().map(|o| o.uid.clone()),
            version: workload.resource_version(),
        }
    }
}

/// What one Host has: its Workloads, the memory and instance slots they reserve, and replicas
/// per deployment uid.
#[derive(Default)]
struct Share {
    workloads: HashSet<ObjectRef<Workload>>,
    memory: u64,
    instances: u64,
    replicas: HashMap<String, u32>,
}

#[derive(Default)]
pub struct Placements {
    by_workload: HashMap<ObjectRef<Workload>, Placed>,
    by_host: HashMap<String, Share>,
    unscheduled: HashSet<ObjectRef<Workload>>,
}

impl Placements {
    /// What is kept of `key`.
    pub fn get(&self, key: &ObjectRef<Workload>) -> Option<&Placed> {
        self.by_workload.get(key)
    }

    /// Each Host's load by label; replicas of the WorkloadDeployment with uid `deployment`
    /// count as siblings.
    pub fn load(&self, deployment: Option<&str>) -> HashMap<String, Load> {
        (self.by_host.iter())
            .map(|(host, share)| {
                let siblings = deployment
                    .and_then(|uid| share.replicas.get(uid))
                    .copied()
                    .unwrap_or(0);
                let load = Load {
                    workloads: share.workloads.len() as u32,
                    memory: share.memory,
                    instances: share.instances,
                    siblings,
                };
                (host.clone(), load)
            })
            .collect()
    }

    /// The Workloads labelled with `host`, and those labelled with none (which a change of
    /// any Host may let in).
    pub fn of_host_and_unscheduled(&self, host: &str) -> Vec<ObjectRef<Workload>> {
        let on_host = self.by_host.get(host).map(|share| &share.workloads);
        (on_host.into_iter().flatten())
            .chain(&self.unscheduled)
            .cloned()
            .collect()
    }

    /// The Workloads labelled with no Host.
    pub fn unscheduled(&self) -> Vec<ObjectRef<Workload>> {
        self.unscheduled.iter().cloned().collect()
    }
}

impl Index for Placements {
    fn set(&mut self, key: ObjectRef<Workload>, workload: &Workload) -> Vec<ObjectRef<Workload>> {
        self.remove(&key);
        let placed = Placed::of(workload);
        match &placed.host {
            Some(host) => {
                let share = self.by_host.entry(host.clone()).or_default();
                share.workloads.insert(key.clone());
                share.memory = share.memory.saturating_add(placed.memory);
                share.instances = share.instances.saturating_add(placed.instances);
                if let Some(uid) = &placed.deployment {
                    *share.replicas.entry(uid.clone()).or_default() += 1;
                }
            }
            None => {
                self.unscheduled.insert(key.clone());
            }
        }
        self.by_workload.insert(key, placed);
        Vec::new()
    }

    fn remove(&mut self, key: &ObjectRef<Workload>) -> Vec<ObjectRef<Workload>> {
        let Some(placed) = self.by_workload.remove(key) else {
            return Vec::new();
        };
        self.unscheduled.remove(key);
        let Some(host) = &placed.host else {
            return Vec::new();
        };
        let Some(share) = self.by_host.get_mut(host) else {
            return Vec::new();
        };
        share.workloads.remove(key);
        share.memory = share.memory.saturating_sub(placed.memory);
        share.instances = share.instances.saturating_sub(placed.instances);
        if let Some(uid) = &placed.deployment
            && let Some(count) = share.replicas.get_mut(uid)
        {
            *count -= 1;
            if *count == 0 {
                share.replicas.remove(uid);
            }
        }
        if share.workloads.is_empty() {
            self.by_host.remove(host);
        }
        Vec::new()
    }

    fn keys(&self) -> Vec<ObjectRef<Workload>> {
        self.by_workload.keys().cloned().collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use kube::Resource;
    use kube::runtime::watcher::Event;
    use weft_api::WorkloadDeployment;

    pub(crate) fn workload(
        name: &str,
        version: &str,
        host: Option<&str>,
        deployment: Option<&str>,
    ) -> Workload {
        Workload {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                labels: host.map(|h| [(HOST_LABEL.to_owned(), h.to_owned())].into()),
                owner_references: deployment.map(|uid| {
                    vec![OwnerReference {
                        api_version: "weft.dev/v1alpha1".into(),
                        kind: WorkloadDeployment::kind(&()).into_owned(),
                        name: "d".into(),
                        uid: uid.into(),
                        controller: Some(true),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(mut refs: Vec<ObjectRef<Workload>>) -> Vec<String> {
        refs.sort_by(|a, b| a.name.cmp(&b.name));
        refs.into_iter().map(|k| k.name).collect()
    }

    #[test]
    fn totals_follow_labels_edits_and_deletions() {
        let index = PlacementsIndex::default();
        index.observe(&Event::Apply(workload("a", "1", Some("h1"), Some("d1"))));
        index.observe(&Event::Apply(workload("b", "1", Some("h1"), None)));
        index.observe(&Event::Apply(workload("c", "1", None, Some("d1"))));
        let load = index.read(|p| p.load(Some("d1")));
        assert_eq!(load["h1"].workloads, 2);
        assert_eq!(load["h1"].siblings, 1);
        assert_eq!(
            load["h1"].memory,
            2 * Workload::default().spec.reserved_memory()
        );
        assert_eq!(
            names(index.read(|p| p.of_host_and_unscheduled("h1"))),
            ["a", "b", "c"]
        );
        assert_eq!(
            names(index.read(|p| p.of_host_and_unscheduled("h2"))),
            ["c"]
        );

        // c is placed, a moves, b goes.
        index.observe(&Event::Apply(workload("c", "2", Some("h2"), Some("d1"))));
        index.observe(&Event::Apply(workload("a", "2", Some("h2"), Some("d1"))));
        index.observe(&Event::Delete(workload("b", "1", Some("h1"), None)));
        let load = index.read(|p| p.load(Some("d1")));
        assert!(!load.contains_key("h1"), "an emptied Host is dropped");
        assert_eq!((load["h2"].workloads, load["h2"].siblings), (2, 2));
        assert_eq!(index.read(|p| p.load(None))["h2"].siblings, 0);
        assert!(index.read(|p| p.unscheduled()).is_empty());
        assert_eq!(
            index.read(|p| p.get(&ObjectRef::new("a").within("ns")).cloned()),
            Some(Placed {
                host: Some("h2".into()),
                memory: Workload::default().spec.reserved_memory(),
                instances: 0,
                deployment: Some("d1".into()),
                version: Some("2".into()),
            })
        );
    }
}
