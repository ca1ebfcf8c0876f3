//! Which images garbage collection must keep on this host: those of every Workload assigned
//! here, and of every Workload waiting for a host, which may be this one. The second matters
//! after a restart: a host that was down lost its Workloads to "no host fits", and the
//! operator gives them back only once it is Ready again, after its first sweep. Read from the
//! API server at each sweep, never from a watch that may not have listed yet.

use kube::api::ListParams;
use kube::{Api, ResourceExt};
use weft_api::Workload;
use weft_api::labels::HOST_LABEL;

/// A source of the images to keep, for `GarbageCollector::start`; `None` when the API server
/// cannot be read (that sweep is skipped).
pub fn lister(
    client: kube::Client,
    host: String,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Option<Vec<String>>> + Send>> + Send + 'static
{
    move || {
        let (api, host) = (Api::<Workload>::all(client.clone()), host.clone());
        Box::pin(async move {
            match list_all(&api).await {
                Ok(workloads) => Some(needed(&workloads, &host)),
                Err(err) => {
                    tracing::warn!(%err, "listing Workloads for image garbage collection");
                    None
                }
            }
        })
    }
}

/// Every Workload, a page of 500 at a time (each page well within the client's response
/// timeout however many there are).
async fn list_all(api: &Api<Workload>) -> kube::Result<Vec<Workload>> {
    let mut params = ListParams::default().limit(500);
    let mut all = Vec::new();
    loop {
        let page = api.list(&params).await?;
        all.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(all),
        }
    }
}

/// The images of `workloads` that `host` may have to run.
fn needed(workloads: &[Workload], host: &str) -> Vec<String> {
    workloads
        .iter()
        .filter(|w| {
            let labelled = w.labels().get(HOST_LABEL).map(String::as_str);
            match w.assignment().host() {
                Some(assigned) => assigned == host || labelled == Some(host),
                None => true,
            }
        })
        .flat_map(|w| w.spec.all_components().map(|c| c.image.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use weft_api::WorkloadStatus;

    use super::*;

    fn workload(image: &str, host: Option<&str>) -> Workload {
        let mut workload: Workload = serde_yaml::from_str(&format!(
            "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: w, generation: 1}}
spec: {{components: [{{name: c, image: '{image}'}}]}}
"
        ))
        .unwrap();
        if let Some(host) = host {
            workload.labels_mut().insert(HOST_LABEL.into(), host.into());
            workload.status = Some(WorkloadStatus {
                host: Some(host.into()),
                observed_generation: Some(1),
                ..Default::default()
            });
        }
        workload
    }

    #[test]
    fn assigned_here_and_waiting_are_needed_elsewhere_are_not() {
        let workloads = [
            workload("r/here:1", Some("host-a")),
            workload("r/waiting:1", None),
            workload("r/elsewhere:1", Some("host-b")),
        ];
        assert_eq!(
            needed(&workloads, "host-a"),
            ["r/here:1".to_string(), "r/waiting:1".to_string()]
        );
    }
}
