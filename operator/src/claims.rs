//! Cluster-wide admission of the HTTP host names a Workload claims, before it is placed: a
//! namespace claims only names it is allowed ([`HostnameGrants`]), and each name belongs to its
//! oldest allowed claimant. Without this, the first Workload to start on a host would serve a
//! name, whichever tenant it belongs to.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};
use weft_api::hostnames::{HostnameGrants, MAX_HTTP_HOSTS};
use weft_api::labels::reason;
use weft_api::{HostnameClaim, Workload, WorkloadDeployment};

/// Why a Workload's claims are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its namespace may not claim this name.
    NotAllowed(String),
    /// An older Workload holds the name.
    Conflict { host: String, owner: String },
}

impl Refusal {
    /// The `Scheduled=False` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotAllowed(_) => reason::HOSTNAME_NOT_ALLOWED,
            Self::Conflict { .. } => reason::HOSTNAME_CONFLICT,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAllowed(why) => f.write_str(why),
            Self::Conflict { host, owner } => write!(
                f,
                "host {host} is claimed by {owner}, which claimed it first"
            ),
        }
    }
}

/// When a Workload's claimant first claimed a host name: [`first_claim`] of its
/// WorkloadDeployment for a replica (`None` when that WorkloadDeployment is not known), of the
/// Workload otherwise.
pub type ClaimedSince<'a> = &'a dyn Fn(&Workload, &str) -> Option<Timestamp>;

/// Which of two claimants of `host` came first: the time they claimed it, then their name (so
/// the order is total and every operator replica agrees). Replicas of one WorkloadDeployment
/// are one claimant.
fn precedence(workload: &Workload, host: &str, since: ClaimedSince<'_>) -> (Timestamp, String) {
    (
        since(workload, host).unwrap_or(Timestamp::MAX),
        workload.claimant(),
    )
}

/// An object that claims host names and records when it first claimed each (`status.hostnames`
/// of a Workload, or of a WorkloadDeployment for all its replicas).
pub trait Claimant: Resource {
    /// The claims recorded in its status, and the generation that status describes.
    fn recorded(&self) -> (&[HostnameClaim], Option<i64>);
}

impl Claimant for Workload {
    fn recorded(&self) -> (&[HostnameClaim], Option<i64>) {
        self.status
            .as_ref()
            .map_or((&[], None), |s| (&s.hostnames, s.observed_generation))
    }
}

impl Claimant for WorkloadDeployment {
    fn recorded(&self) -> (&[HostnameClaim], Option<i64>) {
        self.status
            .as_ref()
            .map_or((&[], None), |s| (&s.hostnames, s.observed_generation))
    }
}

/// When `claimant` first claimed `host`: as the operator recorded it in `status.hostnames`. A
/// name not recorded yet was claimed at the object's creation if its spec is as the operator
/// last saw it (new, or recorded by an operator that kept no claims); else it is claimed only
/// now, by an edit: an old Workload (or WorkloadDeployment template) edited to name a contested
/// host does not take it from the one that held it.
pub fn first_claim(claimant: &impl Claimant, host: &str) -> Option<Timestamp> {
    let (recorded, seen) = claimant.recorded();
    if let Some(claim) = recorded.iter().find(|c| c.name == host) {
        return Some(claim.since.0);
    }
    match seen.is_none() || seen == claimant.meta().generation {
        true => claimant.meta().creation_timestamp.as_ref().map(|t| t.0),
        false => None,
    }
}

/// What `status.hostnames` should say: each of `hosts` with when it was first claimed (`now`
/// for a name claimed only now).
pub fn record(claimant: &impl Claimant, hosts: &[String], now: Timestamp) -> Vec<HostnameClaim> {
    hosts
        .iter()
        .map(|host| HostnameClaim {
            name: host.clone(),
            since: Time(first_claim(claimant, host).unwrap_or(now)),
        })
        .collect()
}

/// The creation time of a Workload.
pub fn created(workload: &Workload) -> Option<Timestamp> {
    workload.meta().creation_timestamp.as_ref().map(|t| t.0)
}

/// Whether `workload` may claim all its host names, given the Workloads that claim any of them
/// (from [`crate::claims_index`]; others are skipped, so passing more changes nothing).
pub fn check<'a>(
    workload: &Workload,
    all: impl IntoIterator<Item = &'a Workload>,
    grants: &HostnameGrants,
    since: ClaimedSince<'_>,
) -> Result<(), Refusal> {
    let namespace = workload.namespace().unwrap_or_default();
    let hosts = workload.spec.http_hosts(&namespace);
    if hosts.is_empty() {
        return Ok(());
    }
    if hosts.len() > MAX_HTTP_HOSTS {
        return Err(Refusal::NotAllowed(format!(
            "it claims {} host names, at most {MAX_HTTP_HOSTS} (its wasi:http config.host and \
             its Service's DNS names)",
            hosts.len()
        )));
    }
    if let Some(why) = hosts.iter().find_map(|h| grants.refusal(&namespace, h)) {
        return Err(Refusal::NotAllowed(why));
    }
    let mut conflict: Option<((Timestamp, String), &String)> = None;
    for other in all {
        let other_namespace = other.namespace().unwrap_or_default();
        let other_hosts = other.spec.http_hosts(&other_namespace);
        for host in hosts
            .iter()
            .filter(|h| other_hosts.contains(h) && grants.refusal(&other_namespace, h).is_none())
        {
            let (mine, theirs) = (
                precedence(workload, host, since),
                precedence(other, host, since),
            );
            if theirs.1 == mine.1
                || theirs >= mine
                || conflict.as_ref().is_some_and(|(c, _)| *c <= theirs)
            {
                continue;
            }
            conflict = Some((theirs, host));
        }
    }
    match conflict {
        Some(((_, owner), host)) => Err(Refusal::Conflict {
            host: host.clone(),
            owner: describe_claimant(&owner),
        }),
        None => Ok(()),
    }
}

/// `ns/Kind/name` as `Kind ns/name`.
fn describe_claimant(claimant: &str) -> String {
    let mut parts = claimant.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(namespace), Some(kind), Some(name)) => format!("{kind} {namespace}/{name}"),
        _ => claimant.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn workload(namespace: &str, name: &str, created: i64, hosts: &str) -> Workload {
        let mut workload: Workload = serde_yaml::from_str(&format!(
            "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  components: [{{name: c, image: r/c:1}}]
  hostInterfaces:
    - {{namespace: wasi, package: http, interfaces: [incoming-handler], config: {{host: '{hosts}'}}}}
"
        ))
        .unwrap();
        workload.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        workload
    }

    fn grants() -> HostnameGrants {
        HostnameGrants::parse(&["a=example.com", "b=example.com"]).unwrap()
    }

    #[test]
    fn the_oldest_claimant_keeps_a_name_across_namespaces() {
        let first = workload("a", "web", 10, "shop.example.com");
        let later = workload("b", "web", 20, "Shop.Example.com:8080");
        let all = [first.clone(), later.clone()];
        assert_eq!(check(&first, &all, &grants(), &first_claim), Ok(()));
        let refused = check(&later, &all, &grants(), &first_claim).unwrap_err();
        assert_eq!(refused.reason(), "HostnameConflict");
        assert_eq!(
            refused.to_string(),
            "host shop.example.com is claimed by Workload a/web, which claimed it first"
        );
    }

    /// `workload` as the operator last saw it at `seen` of its generation `generation`, having
    /// recorded `claims` (host, since).
    fn seen(
        mut workload: Workload,
        generation: i64,
        seen: i64,
        claims: &[(&str, i64)],
    ) -> Workload {
        workload.metadata.generation = Some(generation);
        workload.status = Some(weft_api::WorkloadStatus {
            observed_generation: Some(seen),
            hostnames: claims
                .iter()
                .map(|(name, since)| HostnameClaim {
                    name: name.to_string(),
                    since: Time(Timestamp::from_second(*since).unwrap()),
                })
                .collect(),
            ..Default::default()
        });
        workload
    }

    #[test]
    fn precedence_follows_the_claim_not_the_age_of_the_object() {
        let owner = seen(
            workload("b", "web", 20, "shop.example.com"),
            1,
            1,
            &[("shop.example.com", 20)],
        );
        // An older Workload, edited to claim the name the owner holds.
        let edited = seen(workload("a", "old", 10, "shop.example.com"), 2, 1, &[]);
        let all = [owner.clone(), edited.clone()];
        assert_eq!(check(&owner, &all, &grants(), &first_claim), Ok(()));
        let refused = check(&edited, &all, &grants(), &first_claim).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "host shop.example.com is claimed by Workload b/web, which claimed it first"
        );
        // Its claim is recorded as made now, and stays later than the owner's.
        let now = Timestamp::from_second(30).unwrap();
        let recorded = record(&edited, &["shop.example.com".into()], now);
        assert_eq!(recorded[0].since.0, now);
        let edited = seen(edited, 2, 2, &[("shop.example.com", 30)]);
        let all = [owner.clone(), edited.clone()];
        assert!(check(&edited, &all, &grants(), &first_claim).is_err());
        assert_eq!(check(&owner, &all, &grants(), &first_claim), Ok(()));
        // A claim recorded by no operator yet, on an unchanged spec, dates from the creation.
        let unchanged = seen(workload("a", "old", 10, "shop.example.com"), 1, 1, &[]);
        assert_eq!(
            first_claim(&unchanged, "shop.example.com"),
            created(&unchanged)
        );
    }

    #[test]
    fn the_owner_named_is_the_oldest_and_ties_go_by_name() {
        let oldest = workload("a", "x", 5, "x.example.com");
        let middle = workload("b", "y", 7, "x.example.com");
        let twin = workload("a", "z", 5, "x.example.com");
        let newest = workload("b", "w", 9, "x.example.com");
        let all = [newest.clone(), middle, twin.clone(), oldest.clone()];
        let Err(Refusal::Conflict { owner, .. }) = check(&newest, &all, &grants(), &first_claim)
        else {
            panic!("not refused");
        };
        assert_eq!(owner, "Workload a/x");
        assert!(check(&twin, &all, &grants(), &first_claim).is_err());
        assert!(check(&oldest, &all, &grants(), &first_claim).is_ok());
    }

    #[test]
    fn a_workload_claims_at_most_so_many_names() {
        let hosts = |n: usize| {
            (0..n)
                .map(|i| format!("h{i}.example.com"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let most = workload("a", "most", 1, &hosts(MAX_HTTP_HOSTS));
        assert_eq!(check(&most, [&most], &grants(), &first_claim), Ok(()));
        let greedy = workload("a", "greedy", 1, &hosts(MAX_HTTP_HOSTS + 1));
        let refused = check(&greedy, [&greedy], &grants(), &first_claim).unwrap_err();
        assert_eq!(refused.reason(), "HostnameNotAllowed");
        assert!(
            refused.to_string().contains("33 host names, at most 32"),
            "{refused}"
        );
    }

    #[test]
    fn names_outside_the_grants_are_refused_and_hold_nothing() {
        let squatter = workload("c", "early", 1, "shop.example.com");
        let owner = workload("a", "web", 10, "shop.example.com");
        let all = [squatter.clone(), owner.clone()];
        let refused = check(&squatter, &all, &grants(), &first_claim).unwrap_err();
        assert_eq!(refused.reason(), "HostnameNotAllowed");
        assert!(
            refused
                .to_string()
                .contains("namespace c may not claim host shop.example.com")
        );
        assert_eq!(check(&owner, &all, &grants(), &first_claim), Ok(()));
    }

    #[test]
    fn replicas_of_one_deployment_share_its_names_and_its_age() {
        let replica = |name: &str, created| {
            let mut w = workload("a", name, created, "shop.example.com");
            w.metadata.owner_references = Some(vec![
                serde_yaml::from_str(
                    "{apiVersion: weft.dev/v1alpha1, kind: WorkloadDeployment, name: shop, uid: u, controller: true}",
                )
                .unwrap(),
            ]);
            w
        };
        // The replicas are newer than b/web, but their WorkloadDeployment is older.
        let (r1, r2) = (replica("shop-1", 30), replica("shop-2", 40));
        let rival = workload("b", "web", 20, "shop.example.com");
        let deployment_created = |w: &Workload, _: &str| match w.deployment_owner() {
            Some(_) => Some(Timestamp::from_second(10).unwrap()),
            None => created(w),
        };
        let all = [r1.clone(), r2.clone(), rival.clone()];
        assert_eq!(check(&r1, &all, &grants(), &deployment_created), Ok(()));
        assert_eq!(check(&r2, &all, &grants(), &deployment_created), Ok(()));
        assert_eq!(
            check(&rival, &all, &grants(), &deployment_created)
                .unwrap_err()
                .to_string(),
            "host shop.example.com is claimed by WorkloadDeployment a/shop, which claimed it first"
        );
        // A Workload in another namespace naming the same WorkloadDeployment (even its uid)
        // is its own claimant: owner references point only within a namespace.
        let mut forged = replica("shop-x", 1);
        forged.metadata.namespace = Some("b".into());
        assert_eq!(forged.claimant(), "b/WorkloadDeployment/shop");
        let with_forged = [r1.clone(), forged.clone()];
        let by_namespace = |w: &Workload, _: &str| match w.namespace().as_deref() {
            Some("a") => Some(Timestamp::from_second(10).unwrap()),
            _ => None,
        };
        assert!(
            check(&forged, &with_forged, &grants(), &by_namespace)
                .unwrap_err()
                .to_string()
                .contains("claimed by WorkloadDeployment a/shop")
        );
        // Without the WorkloadDeployment's age the replicas claim from nothing: the rival wins.
        let unknown =
            |w: &Workload, _: &str| w.deployment_owner().map_or_else(|| created(w), |_| None);
        assert!(check(&r1, &all, &grants(), &unknown).is_err());
    }

    #[test]
    fn service_names_are_namespaced_and_never_collide() {
        let with_service = |ns: &str, created| {
            let mut w = workload(ns, "web", created, &format!("web.{ns}"));
            w.spec.kubernetes = serde_yaml::from_str("service: {name: web}").unwrap();
            w
        };
        let (a, b) = (with_service("a", 1), with_service("b", 2));
        assert!(
            a.spec
                .http_hosts("a")
                .contains(&"web.a.svc.cluster.local".to_owned())
        );
        let all = [a.clone(), b.clone()];
        assert_eq!(
            check(&b, &all, &HostnameGrants::default(), &first_claim),
            Ok(())
        );
    }
}
