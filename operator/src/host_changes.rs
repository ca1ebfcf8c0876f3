//! Which Workloads a change of a Host concerns. An agent writes its Host often (its Workload
//! count, at most every half second while Workloads start), and reconciling every Workload of
//! that Host for each write would cost O(N) per write. Only a change of what placement and
//! the EndpointSlices read (readiness, schedulability, address, capacity, interfaces, labels)
//! concerns the Host's Workloads; a count that drops may let an unscheduled one in.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use kube::ResourceExt;
use kube::runtime::watcher::Event;
use weft_api::Host;
use weft_api::labels::condition;

/// Whom a change of one Host concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Concerns {
    /// The Workloads on it and the unscheduled ones.
    HostAndUnscheduled(String),
    /// Only the unscheduled Workloads: room was freed.
    Unscheduled,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// A hash of what Workloads read of the Host.
    fingerprint: u64,
    workloads: u32,
}

impl Seen {
    fn of(host: &Host) -> Self {
        let status = host.status.clone().unwrap_or_default();
        let ready = (status.conditions.iter())
            .find(|c| c.type_ == condition::READY)
            .map(|c| (c.status.clone(), c.reason.clone()));
        let read = serde_json::json!([
            host.labels(),
            host.spec,
            ready,
            status.capacity,
            status.interfaces,
        ]);
        let mut hasher = DefaultHasher::new();
        read.to_string().hash(&mut hasher);
        Self {
            fingerprint: hasher.finish(),
            workloads: status.workloads,
        }
    }
}

/// What was last seen of each Host.
#[derive(Default)]
pub struct HostChanges {
    seen: HashMap<String, Seen>,
    /// The Hosts seen since a relist began; the others are gone when it ends.
    relisted: Option<HashSet<String>>,
}

impl HostChanges {
    /// Applies one event of the Host watch; returns whom it concerns.
    pub fn observe(&mut self, event: &Event<Host>) -> Vec<Concerns> {
        match event {
            Event::Init => {
                self.relisted = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(host) => {
                if let Some(relisted) = self.relisted.as_mut() {
                    relisted.insert(host.name_any());
                }
                self.changed(host)
            }
            Event::Apply(host) => self.changed(host),
            Event::InitDone => {
                let Some(relisted) = self.relisted.take() else {
                    return Vec::new();
                };
                let gone: Vec<String> = (self.seen.keys())
                    .filter(|name| !relisted.contains(*name))
                    .cloned()
                    .collect();
                gone.into_iter().map(|name| self.gone(name)).collect()
            }
            Event::Delete(host) => vec![self.gone(host.name_any())],
        }
    }

    fn changed(&mut self, host: &Host) -> Vec<Concerns> {
        let name = host.name_any();
        let now = Seen::of(host);
        match self.seen.insert(name.clone(), now) {
            Some(before) if before.fingerprint == now.fingerprint => {
                if now.workloads < before.workloads {
                    vec![Concerns::Unscheduled]
                } else {
                    Vec::new()
                }
            }
            _ => vec![Concerns::HostAndUnscheduled(name)],
        }
    }

    fn gone(&mut self, name: String) -> Concerns {
        self.seen.remove(&name);
        Concerns::HostAndUnscheduled(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;
    use weft_api::{HostSpec, HostStatus};

    fn host(name: &str, ready: &str, workloads: u32) -> Host {
        Host {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: HostSpec {
                address: "198.18.0.1".into(),
                http_port: 8080,
                unschedulable: false,
            },
            status: Some(HostStatus {
                conditions: vec![Condition {
                    type_: condition::READY.into(),
                    status: ready.into(),
                    reason: "AgentReady".into(),
                    message: format!("{workloads} running"),
                    last_transition_time: Time(Timestamp::now()),
                    observed_generation: None,
                }],
                workloads,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn only_what_workloads_read_concerns_them() {
        let mut changes = HostChanges::default();
        let h1 = |c: &mut HostChanges, ready, n| c.observe(&Event::Apply(host("h1", ready, n)));
        let all = vec![Concerns::HostAndUnscheduled("h1".into())];
        assert_eq!(h1(&mut changes, "True", 0), all, "a new Host");
        // The agent's count rising (and a message, a transition time): nobody.
        assert!(h1(&mut changes, "True", 5).is_empty());
        assert!(h1(&mut changes, "True", 5).is_empty());
        // The count dropping: room for an unscheduled Workload.
        assert_eq!(h1(&mut changes, "True", 4), vec![Concerns::Unscheduled]);
        // Readiness: everything on it.
        assert_eq!(h1(&mut changes, "False", 4), all);
        let mut cordoned = host("h1", "False", 4);
        cordoned.spec.unschedulable = true;
        assert_eq!(changes.observe(&Event::Apply(cordoned.clone())), all);
        assert_eq!(changes.observe(&Event::Delete(cordoned)), all);

        // A relist that no longer lists a Host: it is gone.
        h1(&mut changes, "True", 0);
        changes.observe(&Event::Apply(host("h2", "True", 0)));
        changes.observe(&Event::Init);
        assert!(
            (changes.observe(&Event::InitApply(host("h2", "True", 0)))).is_empty(),
            "unchanged"
        );
        assert_eq!(changes.observe(&Event::InitDone), all);
    }
}
