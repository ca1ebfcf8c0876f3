//! What a host can promise its workloads: memory and instance slots. Every component reserves
//! `limits.memory × maxConcurrency` bytes and `maxConcurrency` slots (a service one of each)
//! when its workload starts, so no tenant can take the memory or the pool slots that another
//! tenant was promised, and a Workload that does not fit is refused at once with the numbers.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::spec::{ComponentSpec, WorkloadSpec};
use weft_api::limit_defaults::reserved_memory;

/// What one workload holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reservation {
    /// Bytes of memory: every instance the workload may run at once, at its memory limit.
    pub memory: u64,
    /// Instance slots: one per invocation the workload may run at once.
    pub instances: u64,
}

impl Reservation {
    fn plus(self, other: Self) -> Self {
        Self {
            memory: self.memory.saturating_add(other.memory),
            instances: self.instances.saturating_add(other.instances),
        }
    }

    fn minus(self, other: Self) -> Self {
        Self {
            memory: self.memory.saturating_sub(other.memory),
            instances: self.instances.saturating_sub(other.instances),
        }
    }

    /// What `spec` needs.
    pub fn of(spec: &WorkloadSpec) -> Self {
        let components = spec.components.iter().map(|c| {
            (
                reserved_memory(c.limits.memory_bytes, c.limits.max_concurrency),
                u64::from(c.limits.max_concurrency),
            )
        });
        let service = spec
            .service
            .iter()
            .map(|s| (reserved_memory(s.component.limits.memory_bytes, 1), 1));
        components
            .chain(service)
            .fold(Self::default(), |sum, (memory, instances)| {
                sum.plus(Self { memory, instances })
            })
    }
}

/// What the host may give its workloads, and what they hold: a workload that does not fit is
/// refused before it starts, never run until the host runs out.
pub struct Budget {
    total: Reservation,
    /// The most memory one instance may have (the pooling allocator's slot size).
    max_instance_memory: u64,
    /// The longest `limits.timeout` a component may ask for.
    max_timeout: std::time::Duration,
    held: Mutex<Held>,
}

/// What each workload holds, and the sum kept alongside so a reservation costs the same with
/// ten thousand workloads as with one.
#[derive(Default)]
struct Held {
    by_workload: HashMap<String, Reservation>,
    sum: Reservation,
}

impl Held {
    fn set(&mut self, id: &str, reservation: Option<Reservation>) -> Option<Reservation> {
        let before = match reservation {
            Some(r) => {
                self.sum = self.sum.plus(r);
                self.by_workload.insert(id.to_string(), r)
            }
            None => self.by_workload.remove(id),
        };
        if let Some(before) = before {
            self.sum = self.sum.minus(before);
        }
        before
    }
}

impl Budget {
    /// A budget of `memory` bytes and `instances` slots, one instance having at most
    /// `max_instance_memory` bytes.
    pub fn new(memory: u64, instances: u64, max_instance_memory: u64) -> Self {
        Self {
            total: Reservation { memory, instances },
            max_instance_memory,
            max_timeout: std::time::Duration::MAX,
            held: Mutex::default(),
        }
    }

    /// Refuses components whose `limits.timeout` is over `max`.
    pub fn max_timeout(mut self, max: std::time::Duration) -> Self {
        self.max_timeout = max;
        self
    }

    /// What the host has in all.
    pub fn total(&self) -> Reservation {
        self.total
    }

    /// What is reserved now, across workloads.
    pub fn reserved(&self) -> Reservation {
        self.held.lock().sum
    }

    /// Reserves what `spec` needs, in place of what the workload with its id holds now (an
    /// update; that reservation is returned, for [`Budget::restore`]), or says why it does not
    /// fit.
    pub fn reserve(&self, spec: &WorkloadSpec) -> Result<Option<Reservation>> {
        let id = spec.id();
        let refuse = |reason: String| Error::OverBudget {
            workload: id.clone(),
            reason,
        };
        for c in spec
            .components
            .iter()
            .chain(spec.service.as_ref().map(|s| &s.component))
        {
            if c.limits.memory_bytes > self.max_instance_memory {
                return Err(refuse(format!(
                    "component {} asks for limits.memory {} but this host's instances hold at most {} (--max-instance-memory)",
                    c.name,
                    Bytes(c.limits.memory_bytes),
                    Bytes(self.max_instance_memory)
                )));
            }
        }
        for c in &spec.components {
            if c.limits.timeout > self.max_timeout {
                return Err(refuse(format!(
                    "component {} asks for limits.timeout {} but this host allows at most {} (--max-timeout)",
                    c.name,
                    humantime::format_duration(c.limits.timeout),
                    humantime::format_duration(self.max_timeout)
                )));
            }
        }
        let need = Reservation::of(spec);
        let mut held = self.held.lock();
        let mine = held.by_workload.get(&id).copied().unwrap_or_default();
        let others = held.sum.minus(mine);
        let free_memory = self.total.memory.saturating_sub(others.memory);
        if need.memory > free_memory {
            return Err(refuse(format!(
                "needs {} of memory ({}) but this host has {} free of its {} budget",
                Bytes(need.memory),
                breakdown(spec),
                Bytes(free_memory),
                Bytes(self.total.memory)
            )));
        }
        let free_instances = self.total.instances.saturating_sub(others.instances);
        if need.instances > free_instances {
            return Err(refuse(format!(
                "needs {} instance slots (the sum of maxConcurrency) but this host has {} free of {}",
                need.instances, free_instances, self.total.instances
            )));
        }
        Ok(held.set(&id, Some(need)))
    }

    /// Puts back what a workload held before a [`Budget::reserve`] whose start then failed.
    pub fn restore(&self, id: &str, previous: Option<Reservation>) {
        self.held.lock().set(id, previous);
    }

    /// Gives back what the workload `id` held, when it stops.
    pub fn release(&self, id: &str) {
        self.held.lock().set(id, None);
    }
}

/// `component a: 64 MiB × 8, service s: 32 MiB`.
fn breakdown(spec: &WorkloadSpec) -> String {
    let component = |c: &ComponentSpec| {
        format!(
            "component {}: limits.memory {} × maxConcurrency {}",
            c.name,
            Bytes(c.limits.memory_bytes),
            c.limits.max_concurrency
        )
    };
    spec.components
        .iter()
        .map(component)
        .chain(spec.service.iter().map(|s| {
            format!(
                "service {}: limits.memory {}",
                s.component.name,
                Bytes(s.component.limits.memory_bytes)
            )
        }))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Bytes as a person reads them: `64 MiB`, `1.5 GiB`.
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        if value.fract() == 0.0 {
            write!(f, "{value} {}", UNITS[unit])
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

/// The memory a host may promise by default: 80% of its cgroup's limit (the host-agent's Pod
/// limit in a cluster), else of the machine's memory; the rest is the agent's own.
pub fn default_memory_budget() -> u64 {
    let total = cgroup_memory_limit().unwrap_or_else(machine_memory);
    total / 5 * 4
}

fn cgroup_memory_limit() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let unlimited = |v: u64| v >= 1 << 60;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = if controllers.is_empty() {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else {
            continue;
        };
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(limit) = text.trim().parse::<u64>()
            && !unlimited(limit)
        {
            return Some(limit);
        }
    }
    None
}

fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(1 << 30)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ComponentSpec, Limits};

    fn workload(name: &str, memory: u64, concurrency: u32) -> WorkloadSpec {
        let mut c = ComponentSpec::new("c", Vec::new());
        c.limits = Limits {
            memory_bytes: memory,
            max_concurrency: concurrency,
            ..Limits::default()
        };
        WorkloadSpec {
            namespace: "t".into(),
            name: name.into(),
            components: vec![c],
            service: None,
            host_interfaces: Vec::new(),
            volumes: Vec::new(),
            http_group: None,
        }
    }

    #[test]
    fn refuses_what_does_not_fit_with_the_numbers() {
        let budget = Budget::new(1 << 30, 100, 512 << 20);
        budget.reserve(&workload("a", 64 << 20, 8)).unwrap();
        let err = budget
            .reserve(&workload("b", 256 << 20, 4))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs 1 GiB of memory"), "{err}");
        assert!(
            err.contains("limits.memory 256 MiB × maxConcurrency 4"),
            "{err}"
        );
        assert!(err.contains("512 MiB free of its 1 GiB budget"), "{err}");
        // An update replaces its own reservation.
        budget.reserve(&workload("a", 128 << 20, 8)).unwrap();
        assert_eq!(budget.reserved().memory, 1 << 30);
        budget.release("t/a");
        budget.reserve(&workload("b", 256 << 20, 4)).unwrap();
        let slots = Budget::new(1 << 30, 100, 512 << 20);
        let err = slots
            .reserve(&workload("c", 1 << 20, 101))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs 101 instance slots"), "{err}");
        let err = budget
            .reserve(&workload("d", 1 << 30, 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 512 MiB"), "{err}");
    }

    #[test]
    fn prints_sizes_for_people() {
        assert_eq!(Bytes(64 << 20).to_string(), "64 MiB");
        assert_eq!(Bytes(1536 << 20).to_string(), "1.5 GiB");
        assert_eq!(Bytes(100).to_string(), "100 B");
    }
}
