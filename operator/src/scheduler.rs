//! Which Host a Workload goes to: pure functions over Hosts, their Leases and the current load,
//! so every rule of the contract (docs/control-plane.md, "Scheduling") is unit-tested without a
//! cluster.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use weft_api::labels::condition;

use crate::assignments::Load;
use crate::lease_clock::LeaseState;
use crate::selector;
use weft_api::{Host, WitInterface, WitParseError, WorkloadSpec};

mod refusal;
pub use refusal::Refusal;

/// How many per-host reasons an Unschedulable message lists before summarising the rest.
const MAX_LISTED_REFUSALS: usize = 8;

/// The condition of the given type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether a Host's `Ready` condition is `True`.
pub fn host_ready(host: &Host) -> bool {
    host_ready_condition(host).is_some_and(|ready| ready.status == "True")
}

/// A Host's `Ready` condition.
pub fn host_ready_condition(host: &Host) -> Option<&Condition> {
    host.status
        .as_ref()
        .and_then(|status| find_condition(&status.conditions, condition::READY))
}

/// Everything the scheduler needs to know about one Host.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub ready: bool,
    /// Reason of the Ready condition when it is not `True` (`LeaseExpired`, `ShuttingDown`…).
    pub not_ready_reason: Option<String>,
    pub lease: LeaseState,
    pub unschedulable: bool,
    /// Most Workloads the Host accepts; `None` means no limit was reported.
    pub capacity: Option<u32>,
    /// Workloads currently assigned to the Host (counted by label, not as the Host reports).
    pub assigned: u32,
    /// Of those, replicas of the same WorkloadDeployment as the Workload being placed.
    pub siblings: u32,
    /// Memory the Host promises Workloads (`status.capacity.memory`); `None`: not reported.
    pub memory: Option<u64>,
    /// Memory the Workloads assigned to it reserve.
    pub memory_assigned: u64,
    /// Instance slots the Host has (`status.capacity.instances`); `None`: not reported.
    pub instances: Option<u64>,
    /// Instance slots the Workloads assigned to it reserve.
    pub instances_assigned: u64,
    /// What the Host serves, with the backends it offers for each.
    pub interfaces: Vec<(WitInterface, Vec<String>)>,
}

impl Candidate {
    /// Builds the scheduler's view of `host`, given the state of its Lease and how many
    /// Workloads carry its label.
    pub fn new(host: &Host, lease: LeaseState, load: Load) -> Self {
        Self {
            name: host.metadata.name.clone().unwrap_or_default(),
            labels: host.metadata.labels.clone().unwrap_or_default(),
            ready: host_ready(host),
            not_ready_reason: host_ready_condition(host)
                .filter(|ready| ready.status != "True" && !ready.reason.is_empty())
                .map(|ready| ready.reason.clone()),
            lease,
            unschedulable: host.spec.unschedulable,
            capacity: host
                .status
                .as_ref()
                .and_then(|status| status.capacity.as_ref())
                .map(|capacity| capacity.workloads),
            assigned: load.workloads,
            siblings: load.siblings,
            memory: host
                .status
                .as_ref()
                .and_then(|status| status.capacity.as_ref())
                .and_then(|capacity| capacity.memory.as_deref())
                .and_then(|memory| weft_api::parse_memory(memory).ok()),
            memory_assigned: load.memory,
            instances: host
                .status
                .as_ref()
                .and_then(|status| status.capacity.as_ref())
                .and_then(|capacity| capacity.instances),
            instances_assigned: load.instances,
            interfaces: host.served_backends(),
        }
    }

    /// Why the Host cannot keep or take Workloads regardless of which (not ready, lease, cordoned),
    /// ignoring capacity: a full Host still keeps what it runs.
    pub fn health_refusal(&self) -> Option<Refusal> {
        if !self.ready {
            return Some(Refusal::NotReady(self.not_ready_reason.clone()));
        }
        match self.lease {
            LeaseState::Valid { .. } => {}
            LeaseState::Expired => return Some(Refusal::LeaseExpired),
            LeaseState::Missing => return Some(Refusal::NoLease),
        }
        if self.unschedulable {
            return Some(Refusal::Unschedulable);
        }
        None
    }

    /// Why the Host cannot take this new Workload, if it cannot.
    pub fn refusal(&self, requirements: &Requirements) -> Option<Refusal> {
        if let Some(refusal) = self.health_refusal() {
            return Some(refusal);
        }
        if let Some(capacity) = self.capacity
            && self.assigned >= capacity
        {
            return Some(Refusal::Full { capacity });
        }
        if let Some(memory) = self.memory {
            let free = memory.saturating_sub(self.memory_assigned);
            if requirements.memory > free {
                return Some(Refusal::InsufficientMemory {
                    requested: requirements.memory,
                    free,
                });
            }
        }
        // The rule the host's own budget applies (`weft_runtime::budget`), from the same
        // count (`WorkloadSpec::reserved_instances`): a Workload placed here fits its pool.
        if let Some(instances) = self.instances {
            let free = instances.saturating_sub(self.instances_assigned);
            if requirements.instances > free {
                return Some(Refusal::InsufficientInstances {
                    requested: requirements.instances,
                    free,
                });
            }
        }
        if let Some(selector) = &requirements.selector
            && !selector::matches(selector, &self.labels)
        {
            return Some(Refusal::SelectorMismatch);
        }
        let served: Vec<&WitInterface> = self.interfaces.iter().map(|(wit, _)| wit).collect();
        let missing: Vec<String> = requirements
            .interfaces
            .iter()
            .filter(|needed| !needed.satisfied_by(served.iter().copied()))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() {
            return Some(Refusal::MissingInterfaces(missing));
        }
        for (needed, backend) in &requirements.backends {
            let package = WitInterface::package(
                needed.namespace.clone(),
                needed.package.clone(),
                needed.version.clone(),
            );
            let offered = self
                .interfaces
                .iter()
                .any(|(wit, backends)| wit.satisfies(&package) && backends.contains(backend));
            if !offered {
                return Some(Refusal::MissingBackend {
                    package: needed.package_name(),
                    backend: backend.clone(),
                });
            }
        }
        None
    }
}

/// What a Workload asks of its Host.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requirements {
    pub selector: Option<LabelSelector>,
    pub interfaces: Vec<WitInterface>,
    /// The backends entries pick with `config.backend`.
    pub backends: Vec<(WitInterface, String)>,
    /// The memory the Workload reserves on its host (`WorkloadSpec::reserved_memory`).
    pub memory: u64,
    /// The instance slots it reserves (`WorkloadSpec::reserved_instances`).
    pub instances: u64,
}

impl Requirements {
    /// The requirements of `spec`; fails when a host interface is not a valid WIT name (the CRD's
    /// validation should prevent that).
    pub fn from_spec(spec: &WorkloadSpec) -> Result<Self, WitParseError> {
        let interfaces: Vec<WitInterface> = spec
            .host_interfaces
            .iter()
            .map(|entry| entry.to_wit())
            .collect::<Result<_, _>>()?;
        let backends = spec
            .host_interfaces
            .iter()
            .zip(&interfaces)
            .filter_map(|(entry, wit)| Some((wit.clone(), entry.config.get("backend")?.clone())))
            .collect();
        Ok(Self {
            selector: spec.host_selector.clone(),
            interfaces,
            backends,
            memory: spec.reserved_memory(),
            instances: spec.reserved_instances(),
        })
    }
}

/// No Host fits; the message names why each was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unschedulable {
    pub message: String,
}

/// Picks the Host for a Workload: among the Hosts that fit, the one with fewest replicas of the
/// same WorkloadDeployment (a soft anti-affinity: replicas share a Host only when they must),
/// then the least loaded, ties broken by name.
pub fn pick(
    requirements: &Requirements,
    candidates: &[Candidate],
) -> Result<String, Unschedulable> {
    let mut refusals = Vec::new();
    let mut best: Option<&Candidate> = None;
    for candidate in candidates {
        match candidate.refusal(requirements) {
            Some(refusal) => refusals.push((candidate.name.as_str(), refusal)),
            None => {
                let rank = |c: &Candidate| (c.siblings, c.assigned, c.name.clone());
                let better = best.is_none_or(|b| rank(candidate) < rank(b));
                if better {
                    best = Some(candidate);
                }
            }
        }
    }
    match best {
        Some(host) => Ok(host.name.clone()),
        None => Err(Unschedulable {
            message: unschedulable_message(candidates.len(), refusals),
        }),
    }
}

/// `0/2 hosts fit: host-a does not serve …; host-b is not ready`, sorted by host name and cut
/// short after a few hosts so the condition stays readable on large clusters.
fn unschedulable_message(total: usize, mut refusals: Vec<(&str, Refusal)>) -> String {
    if total == 0 {
        return "0/0 hosts fit: no Hosts are registered".to_owned();
    }
    refusals.sort_by(|a, b| a.0.cmp(b.0));
    let mut parts: Vec<String> = refusals
        .iter()
        .take(MAX_LISTED_REFUSALS)
        .map(|(name, refusal)| format!("{name} {refusal}"))
        .collect();
    if refusals.len() > MAX_LISTED_REFUSALS {
        parts.push(format!("and {} more", refusals.len() - MAX_LISTED_REFUSALS));
    }
    format!("0/{total} hosts fit: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;
    use weft_api::{HostCapacity, HostInterface, HostSpec, HostStatus, ServedInterface};

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    fn candidate(name: &str, assigned: u32) -> Candidate {
        Candidate {
            name: name.into(),
            labels: BTreeMap::new(),
            ready: true,
            not_ready_reason: None,
            lease: LeaseState::Valid {
                remaining: std::time::Duration::from_secs(6),
            },
            unschedulable: false,
            capacity: Some(10),
            assigned,
            siblings: 0,
            memory: Some(1 << 30),
            memory_assigned: 0,
            instances: Some(1000),
            instances_assigned: 0,
            interfaces: vec![served("wasi:http@0.2.0", &["built-in"])],
        }
    }

    fn served(interface: &str, backends: &[&str]) -> (WitInterface, Vec<String>) {
        (
            interface.parse().unwrap(),
            backends.iter().map(|b| b.to_string()).collect(),
        )
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn keyvalue() -> Requirements {
        Requirements {
            selector: None,
            interfaces: vec!["wasi:keyvalue/store@0.2.0-draft".parse().unwrap()],
            backends: Vec::new(),
            memory: 0,
            instances: 0,
        }
    }

    #[test]
    fn replicas_spread_before_load_counts() {
        let mut busy = candidate("a", 5);
        let mut idle = candidate("b", 0);
        idle.siblings = 2;
        busy.siblings = 1;
        let req = Requirements::default();
        assert_eq!(pick(&req, &[idle.clone(), busy.clone()]), Ok("a".into()));
        busy.siblings = 2;
        assert_eq!(pick(&req, &[idle, busy]), Ok("b".into()));
    }

    #[test]
    fn least_loaded_wins_ties_by_name() {
        let req = Requirements::default();
        let hosts = [candidate("c", 1), candidate("b", 2), candidate("a", 1)];
        assert_eq!(pick(&req, &hosts).unwrap(), "a");
        let hosts = [candidate("b", 0), candidate("a", 3)];
        assert_eq!(pick(&req, &hosts).unwrap(), "b");
    }

    #[test]
    fn filters_by_interfaces() {
        let mut kv = candidate("kv", 5);
        kv.interfaces.push(served(
            "wasi:keyvalue/atomics,store@0.2.0-draft",
            &["memory"],
        ));
        let mut wrong_version = candidate("old", 0);
        wrong_version
            .interfaces
            .push(served("wasi:keyvalue/store@0.1.0", &["memory"]));
        let plain = candidate("plain", 0);
        assert_eq!(
            pick(&keyvalue(), &[plain.clone(), wrong_version.clone(), kv]).unwrap(),
            "kv"
        );
        let err = pick(&keyvalue(), &[plain, wrong_version]).unwrap_err();
        assert_eq!(
            err.message,
            "0/2 hosts fit: old does not serve wasi:keyvalue/store@0.2.0-draft; \
             plain does not serve wasi:keyvalue/store@0.2.0-draft"
        );
    }

    #[test]
    fn wasi_0_3_http_goes_only_to_hosts_that_serve_it() {
        // An agent from before WASI 0.3 reports 0.2's HTTP interfaces only.
        let mut old = candidate("old", 0);
        old.interfaces = vec![served(
            "wasi:http/incoming-handler,outgoing-handler,types@0.2.0",
            &["built-in"],
        )];
        let mut new = candidate("new", 5);
        new.interfaces = vec![
            served(
                "wasi:http/incoming-handler,outgoing-handler,types@0.2.0",
                &["built-in"],
            ),
            served("wasi:http/handler,client,types@0.3.0", &["built-in"]),
        ];
        let p3 = Requirements {
            interfaces: vec!["wasi:http/handler@0.3.2".parse().unwrap()],
            ..Requirements::default()
        };
        assert_eq!(pick(&p3, &[old.clone(), new.clone()]), Ok("new".into()));
        let err = pick(&p3, &[old.clone()]).unwrap_err();
        assert_eq!(
            err.message,
            "0/1 hosts fit: old does not serve wasi:http/handler@0.3.2"
        );
        // 0.2 still goes to the least loaded of both.
        let p2 = Requirements {
            interfaces: vec!["wasi:http/incoming-handler@0.2.6".parse().unwrap()],
            ..Requirements::default()
        };
        assert_eq!(pick(&p2, &[new, old]), Ok("old".into()));
    }

    #[test]
    fn filters_by_the_backend_an_entry_picks() {
        let mut redis = candidate("redis", 5);
        redis.interfaces.push(served(
            "wasi:keyvalue/atomics,batch,store@0.2.0-draft",
            &["memory", "redis"],
        ));
        let mut memory = candidate("memory", 0);
        memory.interfaces.push(served(
            "wasi:keyvalue/atomics,batch,store@0.2.0-draft",
            &["memory"],
        ));
        let mut req = keyvalue();
        req.backends = vec![(req.interfaces[0].clone(), "redis".into())];
        assert_eq!(pick(&req, &[memory.clone(), redis]).unwrap(), "redis");
        assert_eq!(
            pick(&req, &[memory]).unwrap_err().message,
            "0/1 hosts fit: memory does not offer backend redis for wasi:keyvalue"
        );
    }

    #[test]
    fn filters_by_selector() {
        let mut a = candidate("a", 0);
        a.labels = labels(&[("zone", "a")]);
        let mut b = candidate("b", 3);
        b.labels = labels(&[("zone", "b")]);
        let req = Requirements {
            selector: Some(LabelSelector {
                match_labels: Some(labels(&[("zone", "b")])),
                match_expressions: None,
            }),
            interfaces: vec![],
            backends: Vec::new(),
            memory: 0,
            instances: 0,
        };
        assert_eq!(pick(&req, &[a.clone(), b]).unwrap(), "b");
        assert_eq!(
            pick(&req, &[a]).unwrap_err().message,
            "0/1 hosts fit: a does not match the host selector"
        );
    }

    #[test]
    fn capacity_unschedulable_and_health() {
        let req = Requirements::default();
        let mut full = candidate("full", 10);
        full.capacity = Some(10);
        let mut unlimited = candidate("unlimited", 500);
        unlimited.capacity = None;
        assert_eq!(pick(&req, &[full.clone(), unlimited]).unwrap(), "unlimited");

        let mut cordoned = candidate("cordoned", 0);
        cordoned.unschedulable = true;
        let mut expired = candidate("expired", 0);
        expired.lease = LeaseState::Expired;
        let mut leaseless = candidate("leaseless", 0);
        leaseless.lease = LeaseState::Missing;
        let mut down = candidate("down", 0);
        down.ready = false;
        down.not_ready_reason = Some("ShuttingDown".into());
        let hosts = [full.clone(), cordoned, expired.clone(), leaseless, down];
        assert_eq!(
            pick(&req, &hosts).unwrap_err().message,
            "0/5 hosts fit: cordoned is unschedulable; down is not ready (ShuttingDown); \
             expired has an expired lease; full is full (10 workloads); leaseless has no lease"
        );

        // A full Host keeps what it runs; an expired one does not.
        assert_eq!(full.health_refusal(), None);
        assert_eq!(expired.health_refusal(), Some(Refusal::LeaseExpired));
    }

    #[test]
    fn unschedulable_message_is_compact() {
        assert_eq!(
            pick(&Requirements::default(), &[]).unwrap_err().message,
            "0/0 hosts fit: no Hosts are registered"
        );
        let hosts: Vec<Candidate> = (0..12)
            .map(|i| {
                let mut c = candidate(&format!("h{i:02}"), 0);
                c.ready = false;
                c
            })
            .collect();
        let message = pick(&Requirements::default(), &hosts).unwrap_err().message;
        assert!(
            message.starts_with("0/12 hosts fit: h00 is not ready; "),
            "{message}"
        );
        assert!(
            message.ends_with("h07 is not ready; and 4 more"),
            "{message}"
        );
    }

    #[test]
    fn candidate_from_host() {
        let host = Host {
            metadata: ObjectMeta {
                name: Some("h".into()),
                labels: Some(labels(&[("zone", "a")])),
                ..Default::default()
            },
            spec: HostSpec {
                address: "10.0.0.1".into(),
                http_port: 8080,
                unschedulable: false,
            },
            status: Some(HostStatus {
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    reason: "AgentReady".into(),
                    message: String::new(),
                    last_transition_time: Time(now()),
                    observed_generation: None,
                }],
                capacity: Some(HostCapacity {
                    workloads: 3,
                    memory: None,
                    instances: None,
                }),
                interfaces: vec![
                    ServedInterface {
                        interface: "wasi:keyvalue/store@0.2.0-draft".into(),
                        backend: "memory".into(),
                        backends: vec!["memory".into(), "redis".into()],
                    },
                    ServedInterface {
                        interface: "not a wit name".into(),
                        backend: "x".into(),
                        backends: Vec::new(),
                    },
                ],
                workloads: 0,
                version: String::new(),
            }),
        };
        let fresh = LeaseState::Valid {
            remaining: std::time::Duration::from_secs(6),
        };
        let c = Candidate::new(
            &host,
            fresh,
            Load {
                workloads: 2,
                memory: 0,
                instances: 0,
                siblings: 0,
            },
        );
        assert!(c.ready);
        assert_eq!(c.capacity, Some(3));
        assert_eq!(c.interfaces.len(), 1);
        assert_eq!(c.refusal(&keyvalue()), None);

        let spec = WorkloadSpec {
            host_interfaces: vec![HostInterface {
                namespace: "wasi".into(),
                package: "keyvalue".into(),
                interfaces: vec!["store".into()],
                version: Some("0.2.0-draft".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(Requirements::from_spec(&spec).unwrap(), keyvalue());

        let c = Candidate::new(
            &host,
            fresh,
            Load {
                workloads: 3,
                memory: 0,
                instances: 0,
                siblings: 0,
            },
        );
        assert_eq!(c.refusal(&keyvalue()), Some(Refusal::Full { capacity: 3 }));
        let c = Candidate::new(&host, LeaseState::Missing, Load::default());
        assert_eq!(c.refusal(&keyvalue()), Some(Refusal::NoLease));
    }

    #[test]
    fn memory_is_capacity() {
        let mut host = candidate("a", 1);
        host.memory = Some(256 << 20);
        host.memory_assigned = 200 << 20;
        let mut req = keyvalue();
        req.memory = 64 << 20;
        host.interfaces
            .push(served("wasi:keyvalue/store@0.2.0-draft", &["memory"]));
        assert_eq!(
            host.refusal(&req),
            Some(Refusal::InsufficientMemory {
                requested: 64 << 20,
                free: 56 << 20
            })
        );
        assert_eq!(
            pick(&req, &[host.clone()]).unwrap_err().message,
            "0/1 hosts fit: a has 56Mi of memory left, the Workload reserves 64Mi"
        );
        req.memory = 56 << 20;
        assert_eq!(host.refusal(&req), None);
    }

    #[test]
    fn instance_slots_are_capacity() {
        let mut host = candidate("a", 1);
        host.instances = Some(1000);
        host.instances_assigned = 998;
        let mut req = keyvalue();
        req.instances = 4;
        host.interfaces
            .push(served("wasi:keyvalue/store@0.2.0-draft", &["memory"]));
        assert_eq!(
            pick(&req, &[host.clone()]).unwrap_err().message,
            "0/1 hosts fit: a has 2 instance slots left, the Workload reserves 4"
        );
        req.instances = 2;
        assert_eq!(host.refusal(&req), None);
        // The count is the host's own: components' maxConcurrency, one for a service.
        let spec: WorkloadSpec = serde_yaml::from_str(
            "components:
  - {name: a, image: r/a:1, limits: {maxConcurrency: 3}}
  - {name: b, image: r/b:1}
service: {name: s, image: r/s:1}
",
        )
        .unwrap();
        let defaults = u64::from(weft_api::limit_defaults::MAX_CONCURRENCY);
        assert_eq!(
            Requirements::from_spec(&spec).unwrap().instances,
            3 + defaults + 1
        );
    }
}
