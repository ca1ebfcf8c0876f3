//! Cluster-wide admission of the HTTP host names a Workload claims, before it is placed: a
//! namespace claims only names it is allowed ([`HostnameGrants`]), and each name belongs to its
//! oldest allowed claimant. Without this, the first Workload to start on a host would serve a
//! name, whichever tenant it belongs to.

use std::fmt;

use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};
use weft_api::Workload;
use weft_api::hostnames::HostnameGrants;
use weft_api::labels::reason;

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
                "host {host} is claimed by Workload {owner}, which claimed it first"
            ),
        }
    }
}

/// Which of two claimants came first: creation time, then namespace and name (so the order is
/// total and every operator replica agrees).
fn precedence(workload: &Workload) -> (Timestamp, String, String) {
    let created = workload
        .meta()
        .creation_timestamp
        .as_ref()
        .map_or(Timestamp::MAX, |t| t.0);
    (
        created,
        workload.namespace().unwrap_or_default(),
        workload.name_any(),
    )
}

/// Whether `workload` may claim all its host names, given every Workload in the cluster.
pub fn check<'a>(
    workload: &Workload,
    all: impl IntoIterator<Item = &'a Workload>,
    grants: &HostnameGrants,
) -> Result<(), Refusal> {
    let namespace = workload.namespace().unwrap_or_default();
    let hosts = workload.spec.http_hosts(&namespace);
    if hosts.is_empty() {
        return Ok(());
    }
    if let Some(why) = hosts.iter().find_map(|h| grants.refusal(&namespace, h)) {
        return Err(Refusal::NotAllowed(why));
    }
    let mine = precedence(workload);
    let mut conflict: Option<(&Workload, &String)> = None;
    for other in all {
        let theirs = precedence(other);
        if theirs >= mine || conflict.is_some_and(|(c, _)| precedence(c) <= theirs) {
            continue;
        }
        let other_namespace = other.namespace().unwrap_or_default();
        let other_hosts = other.spec.http_hosts(&other_namespace);
        if let Some(host) = hosts
            .iter()
            .find(|h| other_hosts.contains(h) && grants.refusal(&other_namespace, h).is_none())
        {
            conflict = Some((other, host));
        }
    }
    match conflict {
        Some((owner, host)) => Err(Refusal::Conflict {
            host: host.clone(),
            owner: format!(
                "{}/{}",
                owner.namespace().unwrap_or_default(),
                owner.name_any()
            ),
        }),
        None => Ok(()),
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
        assert_eq!(check(&first, &all, &grants()), Ok(()));
        let refused = check(&later, &all, &grants()).unwrap_err();
        assert_eq!(refused.reason(), "HostnameConflict");
        assert_eq!(
            refused.to_string(),
            "host shop.example.com is claimed by Workload a/web, which claimed it first"
        );
    }

    #[test]
    fn the_owner_named_is_the_oldest_and_ties_go_by_name() {
        let oldest = workload("a", "x", 5, "x.example.com");
        let middle = workload("b", "y", 7, "x.example.com");
        let twin = workload("a", "z", 5, "x.example.com");
        let newest = workload("b", "w", 9, "x.example.com");
        let all = [newest.clone(), middle, twin.clone(), oldest.clone()];
        let Err(Refusal::Conflict { owner, .. }) = check(&newest, &all, &grants()) else {
            panic!("not refused");
        };
        assert_eq!(owner, "a/x");
        assert!(check(&twin, &all, &grants()).is_err());
        assert!(check(&oldest, &all, &grants()).is_ok());
    }

    #[test]
    fn names_outside_the_grants_are_refused_and_hold_nothing() {
        let squatter = workload("c", "early", 1, "shop.example.com");
        let owner = workload("a", "web", 10, "shop.example.com");
        let all = [squatter.clone(), owner.clone()];
        let refused = check(&squatter, &all, &grants()).unwrap_err();
        assert_eq!(refused.reason(), "HostnameNotAllowed");
        assert!(
            refused
                .to_string()
                .contains("namespace c may not claim host shop.example.com")
        );
        assert_eq!(check(&owner, &all, &grants()), Ok(()));
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
        assert_eq!(check(&b, &all, &HostnameGrants::default()), Ok(()));
    }
}
