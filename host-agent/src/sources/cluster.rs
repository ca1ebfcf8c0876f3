//! ConfigMaps and Secrets read from the API server, in the Workload's own namespace only, with
//! the agent's credentials: the chart lets an agent read them only in namespaces a cluster
//! admin listed (docs/rbac.md), and a read the API server refuses says so.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use weft_api::config_source::SourceKind;

use super::{Data, Reader, SourceError, text};

pub struct ClusterReader(pub kube::Client);

#[async_trait::async_trait]
impl Reader for ClusterReader {
    async fn read(
        &self,
        kind: SourceKind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Data>, SourceError> {
        let refused = |e: kube::Error| match e {
            kube::Error::Api(status) if status.is_forbidden() => SourceError::Refused(format!(
                "host-agents may not read {kind}s in namespace {namespace}: a cluster admin lists \
                 the namespaces whose Workloads use them in the chart's hostAgent.secrets.namespaces"
            )),
            // The API server's code, never its words.
            kube::Error::Api(status) => SourceError::Unreadable {
                kind,
                name: name.to_owned(),
                reason: format!("the API server answered {}", status.code),
            },
            _ => SourceError::Unreadable {
                kind,
                name: name.to_owned(),
                reason: "the API server could not be reached".into(),
            },
        };
        match kind {
            SourceKind::Secret => {
                let api: Api<Secret> = Api::namespaced(self.0.clone(), namespace);
                let Some(secret) = api.get_opt(name).await.map_err(refused)? else {
                    return Ok(None);
                };
                let data = secret.data.unwrap_or_default().into_iter();
                data.map(|(key, value)| Ok((key.clone(), text(kind, name, &key, value.0)?)))
                    .collect::<Result<Data, _>>()
                    .map(Some)
            }
            SourceKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(self.0.clone(), namespace);
                let Some(map) = api.get_opt(name).await.map_err(refused)? else {
                    return Ok(None);
                };
                let mut data = map.data.unwrap_or_default();
                for (key, value) in map.binary_data.unwrap_or_default() {
                    let value = text(kind, name, &key, value.0)?;
                    data.insert(key, value);
                }
                Ok(Some(data))
            }
        }
    }
}
