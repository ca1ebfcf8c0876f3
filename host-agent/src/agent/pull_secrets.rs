//! Registry credentials from the `imagePullSecrets` of a Workload's components, read from the
//! Workload's namespace as the kubelet does for Pods.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use weft_api::Workload;

use crate::image::Credentials;

/// The credentials of every Secret the Workload names, the first listed winning per registry.
/// A Secret that cannot be read or parsed is logged and skipped: the pull then fails with the
/// registry's own answer (401), which is what the user needs to see.
pub async fn credentials(client: &kube::Client, workload: &Workload) -> Credentials {
    let namespace = workload.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut names = BTreeSet::new();
    let mut credentials = Credentials::default();
    for component in workload.spec.all_components() {
        for secret in &component.image_pull_secrets {
            if !names.insert(secret.name.clone()) {
                continue;
            }
            match api.get(&secret.name).await {
                Ok(s) => match parse(&s, namespace) {
                    Ok(c) => credentials.merge(c),
                    Err(err) => {
                        tracing::warn!(secret = %secret.name, namespace, %err, "unusable pull secret")
                    }
                },
                Err(err) => {
                    tracing::warn!(secret = %secret.name, namespace, %err, "cannot read pull secret")
                }
            }
        }
    }
    credentials
}

fn parse(secret: &Secret, namespace: &str) -> Result<Credentials, String> {
    let origin = format!(
        "Secret {namespace}/{}",
        secret.metadata.name.as_deref().unwrap_or_default()
    );
    let data = secret
        .data
        .as_ref()
        .ok_or(format!("{origin} has no data"))?;
    let bytes = match secret.type_.as_deref() {
        Some("kubernetes.io/dockerconfigjson") => data.get(".dockerconfigjson"),
        Some("kubernetes.io/dockercfg") => data.get(".dockercfg"),
        other => {
            return Err(format!(
                "{origin} has type {other:?}; expected kubernetes.io/dockerconfigjson"
            ));
        }
    }
    .ok_or(format!("{origin} lacks its Docker config key"))?;
    Credentials::parse(&bytes.0, &origin).map_err(|e| e.to_string())
}
