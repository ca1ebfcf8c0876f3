//! Which Workloads claim each HTTP host name, kept up to date from the Workload watch, so that
//! admitting one Workload's claims ([`crate::claims::check`]) looks only at the Workloads that
//! claim the same names, never at every Workload in the cluster.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;
use weft_api::Workload;

#[derive(Default)]
pub struct ClaimsIndex {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_host: HashMap<String, HashSet<ObjectRef<Workload>>>,
    by_workload: HashMap<ObjectRef<Workload>, Vec<String>>,
    /// The Workloads seen since a relist began; the others are forgotten when it ends.
    relisted: Option<HashSet<ObjectRef<Workload>>>,
}

impl ClaimsIndex {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing in here panics while holding the lock; a poisoned one is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one event of the Workload watch.
    pub fn observe(&self, event: &Event<Workload>) {
        let mut inner = self.lock();
        match event {
            Event::Init => inner.relisted = Some(HashSet::new()),
            Event::InitApply(workload) => {
                let key = ObjectRef::from_obj(workload);
                if let Some(relisted) = inner.relisted.as_mut() {
                    relisted.insert(key);
                }
                inner.set(workload);
            }
            Event::InitDone => {
                if let Some(relisted) = inner.relisted.take() {
                    let gone: Vec<_> = (inner.by_workload.keys())
                        .filter(|k| !relisted.contains(*k))
                        .cloned()
                        .collect();
                    gone.iter().for_each(|k| inner.remove(k));
                }
            }
            Event::Apply(workload) => inner.set(workload),
            Event::Delete(workload) => inner.remove(&ObjectRef::from_obj(workload)),
        }
    }

    /// The Workloads that claim any of `hosts`.
    pub fn claimants(&self, hosts: &[String]) -> HashSet<ObjectRef<Workload>> {
        let inner = self.lock();
        hosts
            .iter()
            .filter_map(|h| inner.by_host.get(h))
            .flatten()
            .cloned()
            .collect()
    }
}

impl Inner {
    fn set(&mut self, workload: &Workload) {
        let key = ObjectRef::from_obj(workload);
        self.remove(&key);
        let hosts = workload
            .spec
            .http_hosts(&workload.namespace().unwrap_or_default());
        if hosts.is_empty() {
            return;
        }
        for host in &hosts {
            self.by_host
                .entry(host.clone())
                .or_default()
                .insert(key.clone());
        }
        self.by_workload.insert(key, hosts);
    }

    fn remove(&mut self, key: &ObjectRef<Workload>) {
        for host in self.by_workload.remove(key).unwrap_or_default() {
            if let Some(claimants) = self.by_host.get_mut(&host) {
                claimants.remove(key);
                if claimants.is_empty() {
                    self.by_host.remove(&host);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut names: Vec<String> = index
            .claimants(&hosts)
            .into_iter()
            .map(|k| k.name)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn follows_edits_deletions_and_relists() {
        let index = ClaimsIndex::default();
        index.observe(&Event::Apply(workload("x", "one.a,two.a")));
        index.observe(&Event::Apply(workload("y", "two.a")));
        assert_eq!(names(&index, &["two.a"]), ["x", "y"]);
        assert_eq!(names(&index, &["one.a", "three.a"]), ["x"]);
        // An edit moves the claim.
        index.observe(&Event::Apply(workload("x", "three.a")));
        assert_eq!(names(&index, &["two.a"]), ["y"]);
        assert_eq!(names(&index, &["one.a", "three.a"]), ["x"]);
        index.observe(&Event::Delete(workload("y", "two.a")));
        assert!(names(&index, &["two.a"]).is_empty());
        // A relist forgets what it no longer lists, and keeps answering while it runs.
        index.observe(&Event::Init);
        index.observe(&Event::InitApply(workload("z", "three.a")));
        assert_eq!(names(&index, &["three.a"]), ["x", "z"]);
        index.observe(&Event::InitDone);
        assert_eq!(names(&index, &["three.a"]), ["z"]);
    }
}
