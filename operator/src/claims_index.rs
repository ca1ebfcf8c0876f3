//! Which Workloads claim each HTTP host name, kept up to date from the Workload watch, so that
//! admitting one Workload's claims ([`crate::claims::check`]) looks only at the Workloads that
//! claim the same names, never at every Workload in the cluster.

use std::collections::{HashMap, HashSet};

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use weft_api::Workload;

use crate::workload_index::{Index, Indexed};

/// The claims of every Workload, by host name.
pub type ClaimsIndex = Indexed<Claims>;

#[derive(Default)]
pub struct Claims {
    by_host: HashMap<String, HashSet<ObjectRef<Workload>>>,
    by_workload: HashMap<ObjectRef<Workload>, Claim>,
}

/// What one Workload claims, and for whom ([`Workload::claimant`]: its WorkloadDeployment's
/// replicas share one).
#[derive(Clone, Default, PartialEq)]
struct Claim {
    hosts: Vec<String>,
    claimant: String,
}

impl Claims {
    /// The Workloads that claim any of `hosts` for another claimant than `claimant`: the only
    /// ones a claim can lose to (a replica never competes with its siblings, and a
    /// WorkloadDeployment's thousand replicas are not a thousand rivals to each).
    pub fn rivals(&self, hosts: &[String], claimant: &str) -> HashSet<ObjectRef<Workload>> {
        (hosts.iter())
            .filter_map(|h| self.by_host.get(h))
            .flatten()
            .filter(|k| {
                self.by_workload
                    .get(*k)
                    .is_some_and(|c| c.claimant != claimant)
            })
            .cloned()
            .collect()
    }

    fn rivals_of(&self, claims: &[&Claim]) -> Vec<ObjectRef<Workload>> {
        let mut rivals = HashSet::new();
        for claim in claims {
            rivals.extend(self.rivals(&claim.hosts, &claim.claimant));
        }
        rivals.into_iter().collect()
    }
}

impl Index for Claims {
    /// A Workload whose claims changed concerns the rivals for its old and new names: one may
    /// now be admitted, or lose a name to an older claim. (Its status writes change no claim,
    /// so they wake no one.)
    fn set(&mut self, key: ObjectRef<Workload>, workload: &Workload) -> Vec<ObjectRef<Workload>> {
        let claim = Claim {
            hosts: workload
                .spec
                .http_hosts(&workload.namespace().unwrap_or_default()),
            claimant: workload.claimant(),
        };
        let old = self.by_workload.get(&key).cloned().unwrap_or_default();
        if old == claim {
            return Vec::new();
        }
        self.remove(&key);
        for host in &claim.hosts {
            self.by_host
                .entry(host.clone())
                .or_default()
                .insert(key.clone());
        }
        let woken = self.rivals_of(&[&old, &claim]);
        if !claim.hosts.is_empty() {
            self.by_workload.insert(key, claim);
        }
        woken
    }

    /// A Workload gone frees its names for its rivals.
    fn remove(&mut self, key: &ObjectRef<Workload>) -> Vec<ObjectRef<Workload>> {
        let Some(claim) = self.by_workload.remove(key) else {
            return Vec::new();
        };
        for host in &claim.hosts {
            if let Some(claimants) = self.by_host.get_mut(host) {
                claimants.remove(key);
                if claimants.is_empty() {
                    self.by_host.remove(host);
                }
            }
        }
        self.rivals_of(&[&claim])
    }

    fn keys(&self) -> Vec<ObjectRef<Workload>> {
        self.by_workload.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::Event;

    fn workload(name: &str, hosts: &str) -> Workload {
        serde_yaml::from_str(&format!(
            "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: {name}, namespace: a}}
spec:
  components: [{{name: c, image: r/c:1}}]
  hostInterfaces:
    - {{namespace: wasi, package: http, interfaces: [incoming-handler], config: {{host: '{hosts}'}}}}
"
        ))
        .unwrap()
    }

    fn names(index: &ClaimsIndex, hosts: &[&str]) -> Vec<String> {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut names: Vec<String> = (index.read(|c| c.rivals(&hosts, "nobody")).into_iter())
            .map(|k| k.name)
            .collect();
        names.sort();
        names
    }

    fn woken(refs: Vec<ObjectRef<Workload>>) -> Vec<String> {
        let mut names: Vec<String> = refs.into_iter().map(|k| k.name).collect();
        names.sort();
        names
    }

    #[test]
    fn follows_edits_deletions_and_relists() {
        let index = ClaimsIndex::default();
        assert!(woken(index.observe(&Event::Apply(workload("x", "one.a,two.a")))).is_empty());
        // A new claimant concerns the others: it may be older (a replica of an old claim).
        assert_eq!(
            woken(index.observe(&Event::Apply(workload("y", "two.a")))),
            ["x"]
        );
        assert_eq!(names(&index, &["two.a"]), ["x", "y"]);
        assert_eq!(names(&index, &["one.a", "three.a"]), ["x"]);
        // A change that keeps the names (a status write) wakes no one.
        assert!(woken(index.observe(&Event::Apply(workload("y", "two.a")))).is_empty());
        // An edit moves the claim, and wakes who may now get the name it left.
        assert_eq!(
            woken(index.observe(&Event::Apply(workload("x", "three.a")))),
            ["y"]
        );
        assert_eq!(names(&index, &["two.a"]), ["y"]);
        assert_eq!(names(&index, &["one.a", "three.a"]), ["x"]);
        assert!(woken(index.observe(&Event::Delete(workload("y", "two.a")))).is_empty());
        assert!(names(&index, &["two.a"]).is_empty());
        // A relist forgets what it no longer lists, and keeps answering while it runs.
        index.observe(&Event::Init);
        assert_eq!(
            woken(index.observe(&Event::InitApply(workload("z", "three.a")))),
            ["x"]
        );
        assert_eq!(names(&index, &["three.a"]), ["x", "z"]);
        assert_eq!(woken(index.observe(&Event::InitDone)), ["z"]);
        assert_eq!(names(&index, &["three.a"]), ["z"]);
    }

    #[test]
    fn replicas_are_not_each_others_rivals() {
        let replica = |name: &str| {
            let mut w = workload(name, "web.a");
            w.metadata.owner_references = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "weft.dev/v1alpha1".into(),
                    kind: "WorkloadDeployment".into(),
                    name: "web".into(),
                    uid: "u1".into(),
                    controller: Some(true),
                    ..Default::default()
                },
            ]);
            w
        };
        let index = ClaimsIndex::default();
        for i in 0..3 {
            assert!(woken(index.observe(&Event::Apply(replica(&format!("r{i}"))))).is_empty());
        }
        // A Workload claiming the same name is every replica's rival, and they are its.
        assert_eq!(
            woken(index.observe(&Event::Apply(workload("solo", "web.a")))),
            ["r0", "r1", "r2"]
        );
        let rivals = index.read(|c| c.rivals(&["web.a".into()], "a/WorkloadDeployment/web"));
        assert_eq!(woken(rivals.into_iter().collect()), ["solo"]);
    }
}
