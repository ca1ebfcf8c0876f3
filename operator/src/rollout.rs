//! What a WorkloadDeployment's replicas should become next: how many to create from the current
//! template and which to delete, by the rules of a Deployment's rollout (docs/workload-deployment.md).
//! Pure, so every rule is tested without an API server.

use std::collections::HashMap;

use k8s_openapi::jiff::Timestamp;
use weft_api::{StrategyType, WorkloadDeploymentSpec};

/// What the controller knows of one replica.
#[derive(Clone, Debug, PartialEq)]
pub struct Replica {
    pub name: String,
    /// Its `weft.dev/template-hash`.
    pub hash: String,
    /// Its `Ready` condition is True.
    pub ready: bool,
    /// The Host it is assigned to.
    pub host: Option<String>,
    /// Being deleted.
    pub terminating: bool,
    pub created: Option<Timestamp>,
}

/// The next step of a rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Replicas to create from the current template.
    pub create: usize,
    /// Replicas to delete, by name.
    pub delete: Vec<String>,
}

impl Step {
    pub fn is_empty(&self) -> bool {
        self.create == 0 && self.delete.is_empty()
    }
}

/// The next step for `replicas` of a WorkloadDeployment whose current template hashes to `hash`.
pub fn next_step(spec: &WorkloadDeploymentSpec, hash: &str, replicas: &[Replica]) -> Step {
    let want = usize::try_from(spec.replicas).unwrap_or(0);
    let live: Vec<&Replica> = replicas.iter().filter(|r| !r.terminating).collect();
    let (new, old): (Vec<&Replica>, Vec<&Replica>) = live.iter().partition(|r| r.hash == hash);
    let spread = per_host(&live);

    if !old.is_empty() && spec.paused {
        return Step::default();
    }
    if spec.strategy_type() == StrategyType::Recreate {
        let stopping = replicas.iter().any(|r| r.terminating && r.hash != hash);
        if !old.is_empty() || stopping {
            return recreate(&old);
        }
    }
    if old.is_empty() {
        return scale(want, &new, &spread);
    }
    roll(spec, want, &new, &old, &spread)
}

/// Without old replicas: create or delete until `want` exist.
fn scale(want: usize, new: &[&Replica], spread: &HashMap<&str, usize>) -> Step {
    if new.len() < want {
        return Step {
            create: want - new.len(),
            delete: vec![],
        };
    }
    Step {
        create: 0,
        delete: first_to_delete(new, spread, new.len() - want),
    }
}

/// Recreate: delete every old replica; new ones are created only once none is left, not even
/// stopping.
fn recreate(old: &[&Replica]) -> Step {
    Step {
        create: 0,
        delete: old.iter().map(|r| r.name.clone()).collect(),
    }
}

/// RollingUpdate: new replicas up to `replicas + maxSurge` in all, old ones deleted while at least
/// `replicas - maxUnavailable` stay available.
fn roll(
    spec: &WorkloadDeploymentSpec,
    want: usize,
    new: &[&Replica],
    old: &[&Replica],
    spread: &HashMap<&str, usize>,
) -> Step {
    let (surge, unavailable) = spec.rolling_bounds();
    let (surge, unavailable) = (
        usize::try_from(surge).unwrap_or(0),
        usize::try_from(unavailable).unwrap_or(0),
    );
    let total = new.len() + old.len();
    let create = want
        .saturating_sub(new.len())
        .min((want + surge).saturating_sub(total));

    let min_available = want.saturating_sub(unavailable);
    let new_unavailable = new.iter().filter(|r| !r.ready).count();
    let mut budget = total
        .saturating_sub(min_available)
        .saturating_sub(new_unavailable);
    // Replicas that do not serve cost no availability: they go first.
    let unready: Vec<&Replica> = old.iter().copied().filter(|r| !r.ready).collect();
    let mut delete = first_to_delete(&unready, spread, budget.min(unready.len()));
    budget -= delete.len();
    let available = new.len() - new_unavailable + old.len() - unready.len();
    let ready: Vec<&Replica> = old.iter().copied().filter(|r| r.ready).collect();
    let spare = available.saturating_sub(min_available).min(budget);
    delete.extend(first_to_delete(&ready, spread, spare.min(ready.len())));
    Step { create, delete }
}

/// Live replicas per Host.
fn per_host<'a>(live: &[&'a Replica]) -> HashMap<&'a str, usize> {
    let mut count = HashMap::new();
    for host in live.iter().filter_map(|r| r.host.as_deref()) {
        *count.entry(host).or_default() += 1;
    }
    count
}

/// The `n` replicas to delete first, as a ReplicaSet chooses Pods: not placed before placed, not
/// ready before ready, those on the Hosts holding most replicas first (so every Host keeps
/// serving as long as it can), then the newest.
fn first_to_delete(
    candidates: &[&Replica],
    spread: &HashMap<&str, usize>,
    n: usize,
) -> Vec<String> {
    let mut ranked = candidates.to_vec();
    ranked.sort_by_key(|r| {
        let crowd = r.host.as_deref().map_or(0, |h| spread[h]);
        (
            r.host.is_some(),
            r.ready,
            std::cmp::Reverse(crowd),
            std::cmp::Reverse(r.created),
            r.name.clone(),
        )
    });
    ranked.into_iter().take(n).map(|r| r.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(replicas: i32, strategy: &str) -> WorkloadDeploymentSpec {
        serde_yaml::from_str(&format!(
            "replicas: {replicas}
template: {{spec: {{components: [{{name: c, image: r/c:1}}]}}}}
{strategy}"
        ))
        .unwrap()
    }

    fn replica(name: &str, hash: &str, ready: bool, host: Option<&str>) -> Replica {
        Replica {
            name: name.into(),
            hash: hash.into(),
            ready,
            host: host.map(Into::into),
            terminating: false,
            created: None,
        }
    }

    #[test]
    fn scales_up_and_down_without_old_replicas() {
        let s = spec(3, "");
        assert_eq!(next_step(&s, "n", &[]).create, 3);
        let five = [
            replica("a", "n", true, Some("h1")),
            replica("b", "n", true, Some("h1")),
            replica("c", "n", true, Some("h2")),
            replica("d", "n", false, Some("h2")),
            replica("e", "n", true, None),
        ];
        let step = next_step(&spec(2, ""), "n", &five);
        assert_eq!(step.create, 0);
        // Unplaced first, then not ready, then from the Host holding most.
        assert_eq!(step.delete, ["e", "d", "a"]);
    }

    #[test]
    fn a_rolling_update_stays_within_surge_and_availability() {
        let s = spec(
            3,
            "strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}",
        );
        let mut replicas = vec![
            replica("o1", "old", true, Some("h1")),
            replica("o2", "old", true, Some("h2")),
            replica("o3", "old", true, Some("h2")),
        ];
        assert_eq!(
            next_step(&s, "new", &replicas),
            Step {
                create: 1,
                delete: vec![]
            }
        );
        replicas.push(replica("n1", "new", false, Some("h1")));
        assert!(next_step(&s, "new", &replicas).is_empty(), "waits for n1");
        replicas[3].ready = true;
        // Both Hosts hold two; the newest old replica goes.
        let step = next_step(&s, "new", &replicas);
        assert_eq!(step.create, 0);
        assert_eq!(step.delete.len(), 1);
    }

    #[test]
    fn a_bad_template_never_costs_availability() {
        let s = spec(
            3,
            "strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}",
        );
        let replicas = [
            replica("o1", "old", true, Some("h1")),
            replica("o2", "old", true, Some("h2")),
            replica("o3", "old", true, Some("h2")),
            replica("n1", "new", false, None),
        ];
        assert!(next_step(&s, "new", &replicas).is_empty());
    }

    #[test]
    fn unready_old_replicas_go_first() {
        let s = spec(
            2,
            "strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}",
        );
        let replicas = [
            replica("o1", "old", true, Some("h1")),
            replica("o2", "old", false, Some("h2")),
        ];
        let step = next_step(&s, "new", &replicas);
        assert_eq!(step.delete, ["o2"]);
        assert_eq!(step.create, 0, "no surge: room comes from deletions");
    }

    #[test]
    fn recreate_deletes_everything_old_before_creating() {
        let s = spec(2, "strategy: {type: Recreate}");
        let replicas = [
            replica("o1", "old", true, Some("h1")),
            replica("o2", "old", true, Some("h2")),
        ];
        assert_eq!(next_step(&s, "new", &replicas).delete, ["o1", "o2"]);
        let mut stopping = replicas.to_vec();
        for r in &mut stopping {
            r.terminating = true;
        }
        assert!(next_step(&s, "new", &stopping).is_empty(), "waits for them");
        assert_eq!(next_step(&s, "new", &[]).create, 2);
    }

    #[test]
    fn paused_changes_nothing_while_old_replicas_exist() {
        let s = spec(3, "paused: true");
        let replicas = [replica("o1", "old", true, Some("h1"))];
        assert!(next_step(&s, "new", &replicas).is_empty());
        let current = [replica("n1", "new", true, Some("h1"))];
        assert_eq!(next_step(&s, "new", &current).create, 2, "still scales");
    }
}
