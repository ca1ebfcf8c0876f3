//! The template history of a WorkloadDeployment, as `apps/v1` ControllerRevisions (the way
//! DaemonSets and StatefulSets keep theirs): one per template, named `<deployment>-<hash>`,
//! numbered in the order the templates became current, at most `revisionHistoryLimit` besides the
//! current one. `kubectl get controllerrevisions -l weft.dev/deployment=<name>` lists them.

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use weft_api::WorkloadDeployment;
use weft_api::labels::{DEPLOYMENT_LABEL, OPERATOR_FIELD_MANAGER, TEMPLATE_HASH_LABEL};

use crate::context::Context;
use crate::error::Error;

/// Records `hash` as the current revision and prunes the history. Does nothing when the status
/// already names `hash` (the revision was recorded when the template became current).
pub async fn reconcile(
    deployment: &WorkloadDeployment,
    hash: &str,
    ctx: &Context,
) -> Result<(), Error> {
    if deployment
        .status
        .as_ref()
        .and_then(|s| s.template_hash.as_deref())
        == Some(hash)
    {
        return Ok(());
    }
    let namespace = deployment.namespace().unwrap_or_default();
    let name = deployment.name_any();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &namespace);
    let what =
        |doing: &str| format!("{doing} the revisions of WorkloadDeployment {namespace}/{name}");
    let uid = deployment.uid();
    let mut revisions: Vec<ControllerRevision> = api
        .list(&ListParams::default().labels(&format!("{DEPLOYMENT_LABEL}={name}")))
        .await
        .map_err(Error::kube(what("listing")))?
        .items
        .into_iter()
        .filter(|r| {
            r.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == uid.as_ref())
        })
        .collect();
    revisions.sort_by_key(|r| r.revision);
    let next = revisions.last().map_or(1, |r| r.revision + 1);

    let current_name = format!("{name}-{hash}");
    match revisions.iter().position(|r| r.name_any() == current_name) {
        Some(i) if i + 1 == revisions.len() => {}
        Some(i) => {
            // An earlier template came back (a rollback): it becomes the newest revision.
            api.patch(
                &current_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"revision": next})),
            )
            .await
            .map_err(Error::kube(what("renumbering")))?;
            let mut back = revisions.remove(i);
            back.revision = next;
            revisions.push(back);
        }
        None => {
            let mut owner = deployment
                .controller_owner_ref(&())
                .ok_or(Error::MissingField {
                    kind: "WorkloadDeployment",
                    field: "metadata.uid",
                })?;
            owner.block_owner_deletion = Some(true);
            let revision = ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(current_name),
                    namespace: Some(namespace.clone()),
                    labels: Some(
                        [
                            (DEPLOYMENT_LABEL.to_owned(), name.clone()),
                            (TEMPLATE_HASH_LABEL.to_owned(), hash.to_owned()),
                        ]
                        .into(),
                    ),
                    owner_references: Some(vec![owner]),
                    ..Default::default()
                },
                data: Some(RawExtension(
                    json!({ "template": deployment.spec.template }),
                )),
                revision: next,
            };
            let params = PostParams {
                field_manager: Some(OPERATOR_FIELD_MANAGER.to_owned()),
                ..Default::default()
            };
            match api.create(&params, &revision).await {
                Ok(created) => revisions.push(created),
                // Recorded by an earlier attempt whose status write failed.
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(source) => return Err(Error::kube(what("recording"))(source)),
            }
        }
    }

    let keep = deployment.spec.history_limit() + 1;
    let excess = revisions.len().saturating_sub(keep);
    for old in revisions.iter().take(excess) {
        match api.delete(&old.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => return Err(Error::kube(what("pruning"))(source)),
        }
    }
    Ok(())
}
