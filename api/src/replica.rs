//! Replicas of a WorkloadDeployment: how one is made from the template (the operator's and the
//! local run's one rule), and which WorkloadDeployment a Workload is a replica of. Replicas of one
//! WorkloadDeployment share its HTTP host names (one claimant for the operator's claims, one route
//! the host-agent balances over); every other Workload claims its names alone.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::labels::{DEPLOYMENT_LABEL, TEMPLATE_HASH_LABEL};
use crate::{Workload, WorkloadDeployment, WorkloadTemplate};

impl WorkloadTemplate {
    /// The hash of a template: the `weft.dev/template-hash` label of its replicas and part of
    /// their names. 40 bits of SHA-256 over the template's JSON (its maps are ordered, so the JSON
    /// is stable).
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a template serializes");
        Sha256::digest(&json)[..5]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl WorkloadDeployment {
    /// A replica of the template, still without a name: the template's labels (`weft.dev/`
    /// ones dropped) and annotations, labelled with this WorkloadDeployment and the template's
    /// hash, and controlled by it. `None` without a uid, which the API server always sets.
    pub fn replica(&self) -> Option<Workload> {
        let template = &self.spec.template;
        // The CRD refuses weft.dev/ labels in a template; dropping them again keeps the
        // operator, which the admission policies trust, from setting weft.dev/host for a tenant.
        let mut labels: BTreeMap<String, String> = template
            .metadata
            .labels
            .iter()
            .filter(|(k, _)| !k.starts_with("weft.dev/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert(DEPLOYMENT_LABEL.to_owned(), self.name_any());
        labels.insert(TEMPLATE_HASH_LABEL.to_owned(), template.hash());
        let mut owner = self.controller_owner_ref(&())?;
        owner.block_owner_deletion = Some(true);
        Some(Workload {
            metadata: ObjectMeta {
                namespace: self.namespace(),
                labels: Some(labels),
                annotations: (!template.metadata.annotations.is_empty())
                    .then(|| template.metadata.annotations.clone()),
                owner_references: Some(vec![owner]),
                ..Default::default()
            },
            spec: template.spec.clone(),
            status: None,
        })
    }
}

impl Workload {
    /// The controller reference to the WorkloadDeployment this Workload is a replica of.
    /// Owner references only point within a namespace, so a tenant cannot join another
    /// namespace's WorkloadDeployment.
    pub fn deployment_owner(&self) -> Option<&OwnerReference> {
        let api_version = WorkloadDeployment::api_version(&());
        let kind = WorkloadDeployment::kind(&());
        self.owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == kind && o.api_version == api_version)
    }

    /// Who claims this Workload's host names: `namespace/WorkloadDeployment/name` for a replica,
    /// `namespace/Workload/name` otherwise.
    pub fn claimant(&self) -> String {
        let namespace = self.namespace().unwrap_or_default();
        match self.deployment_owner() {
            Some(owner) => format!("{namespace}/WorkloadDeployment/{}", owner.name),
            None => format!("{namespace}/Workload/{}", self.name_any()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(owner_kind: &str, controller: bool) -> Workload {
        serde_yaml::from_str(&format!(
            "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: web-abc-x1
  namespace: a
  ownerReferences:
    - {{apiVersion: weft.dev/v1alpha1, kind: {owner_kind}, name: web, uid: u1, controller: {controller}}}
spec: {{components: [{{name: c, image: r/c:1}}]}}
"
        ))
        .unwrap()
    }

    #[test]
    fn a_replica_carries_the_template_and_its_owner() {
        let mut deployment: WorkloadDeployment = serde_yaml::from_str(
            "apiVersion: weft.dev/v1alpha1
kind: WorkloadDeployment
metadata: {name: web, namespace: a, uid: u1}
spec:
  template:
    metadata:
      labels: {app: web, weft.dev/host: forged}
      annotations: {note: hi}
    spec: {components: [{name: c, image: r/c:1}]}
",
        )
        .unwrap();
        let replica = deployment.replica().unwrap();
        let hash = deployment.spec.template.hash();
        assert_eq!(hash.len(), 10);
        let labels = replica.labels();
        assert_eq!(labels["app"], "web");
        assert_eq!(labels["weft.dev/deployment"], "web");
        assert_eq!(labels["weft.dev/template-hash"], hash);
        assert!(!labels.contains_key("weft.dev/host"));
        assert_eq!(replica.annotations()["note"], "hi");
        assert_eq!(replica.claimant(), "a/WorkloadDeployment/web");
        assert_eq!(replica.spec, deployment.spec.template.spec);

        deployment.spec.template.spec.components[0].image = "r/c:2".into();
        assert_ne!(deployment.spec.template.hash(), hash);
        deployment.metadata.uid = None;
        assert!(deployment.replica().is_none());
    }

    #[test]
    fn only_a_controlling_workload_deployment_makes_a_replica() {
        assert_eq!(
            workload("WorkloadDeployment", true).claimant(),
            "a/WorkloadDeployment/web"
        );
        assert_eq!(
            workload("WorkloadDeployment", false).claimant(),
            "a/Workload/web-abc-x1"
        );
        assert_eq!(
            workload("ConfigMap", true).claimant(),
            "a/Workload/web-abc-x1"
        );
    }
}
