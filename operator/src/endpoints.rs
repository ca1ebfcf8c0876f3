//! EndpointSlices for Workloads with `spec.kubernetes.service.name`: `<service>-weft` in the
//! Workload's namespace, listing the address and HTTP port of each Host where the Workload (or,
//! for a WorkloadDeployment, one of its replicas) is Running, and no endpoints otherwise. The
//! Workload controller keeps a lone Workload's slices, the WorkloadDeployment controller those
//! of its replicas.

use std::collections::BTreeMap;

use std::net::{Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use weft_api::labels::OPERATOR_FIELD_MANAGER;
use weft_api::{Host, Workload};

use crate::context::Context;
use crate::error::Error;

/// Label naming the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming who manages an EndpointSlice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on the operator's EndpointSlices.
pub const MANAGED_BY: &str = "weft.dev-operator";
/// Name of the port listed in the EndpointSlice.
pub const PORT_NAME: &str = "http";

/// Name of the EndpointSlice for `service`.
pub fn slice_name(service: &str) -> String {
    format!("{service}-weft")
}

/// The EndpointSlice `addressType` for an address: `IPv4`, `IPv6`, or `FQDN` for a DNS name.
pub fn address_type(address: &str) -> &'static str {
    if address.parse::<Ipv4Addr>().is_ok() {
        "IPv4"
    } else if address.parse::<Ipv6Addr>().is_ok() {
        "IPv6"
    } else {
        "FQDN"
    }
}

/// The EndpointSlice for `service`, listing `ready_on` (the Hosts the Workload runs Ready on).
/// One slice has one address type and one port: Hosts of the first Host's address family and
/// HTTP port are listed (Hosts of one installation share both). Without a Host the address type
/// of `existing` is kept, as it cannot change.
pub fn desired_slice(
    namespace: &str,
    service: &str,
    owner: OwnerReference,
    ready_on: &[&Host],
    existing: Option<&EndpointSlice>,
) -> EndpointSlice {
    let (address_type, endpoints, ports) = match ready_on.first() {
        Some(first) => {
            let family = address_type(&first.spec.address);
            let port = first.spec.http_port;
            let mut addresses: Vec<&str> = ready_on
                .iter()
                .filter(|h| address_type(&h.spec.address) == family && h.spec.http_port == port)
                .map(|h| h.spec.address.as_str())
                .collect();
            addresses.sort_unstable();
            addresses.dedup();
            let endpoints = addresses
                .into_iter()
                .map(|address| Endpoint {
                    addresses: vec![address.to_owned()],
                    conditions: Some(EndpointConditions {
                        ready: Some(true),
                        serving: Some(true),
                        terminating: Some(false),
                    }),
                    ..Default::default()
                })
                .collect();
            (
                family,
                endpoints,
                Some(vec![EndpointPort {
                    name: Some(PORT_NAME.to_owned()),
                    port: Some(i32::from(port)),
                    protocol: Some("TCP".to_owned()),
                    app_protocol: None,
                }]),
            )
        }
        None => (
            match existing.map(|slice| slice.address_type.as_str()) {
                Some("IPv6") => "IPv6",
                Some("FQDN") => "FQDN",
                _ => "IPv4",
            },
            vec![],
            None,
        ),
    };
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(slice_name(service)),
            namespace: Some(namespace.to_owned()),
            labels: Some(
                [
                    (SERVICE_NAME_LABEL.to_owned(), service.to_owned()),
                    (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                ]
                .into(),
            ),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        address_type: address_type.to_owned(),
        endpoints,
        ports,
    }
}

/// Whether `existing` already says what `desired` says (so no apply is needed).
fn up_to_date(existing: &EndpointSlice, desired: &EndpointSlice) -> bool {
    let labels_kept = desired
        .labels()
        .iter()
        .all(|(k, v)| existing.labels().get(k) == Some(v));
    let owned = desired.owner_references().iter().all(|owner| {
        existing
            .owner_references()
            .iter()
            .any(|o| o.uid == owner.uid)
    });
    existing.address_type == desired.address_type
        && existing.endpoints == desired.endpoints
        && existing.ports.clone().unwrap_or_default() == desired.ports.clone().unwrap_or_default()
        && labels_kept
        && owned
}

/// The Service a Workload names, if any.
pub fn service_of(workload: &Workload) -> Option<&str> {
    workload
        .spec
        .kubernetes
        .as_ref()
        .and_then(|k| k.service.as_ref())
        .map(|s| s.name.as_str())
}

/// Brings a lone Workload's EndpointSlice in line (`ready_on`: the Host it runs Ready on).
pub async fn reconcile(
    workload: &Workload,
    ready_on: Option<&Host>,
    ctx: &Context,
) -> Result<(), Error> {
    let owner = workload
        .controller_owner_ref(&())
        .ok_or(Error::MissingField {
            kind: "Workload",
            field: "metadata.uid",
        })?;
    let wanted = service_of(workload)
        .map(|service| (service.to_owned(), ready_on.into_iter().collect()))
        .into_iter()
        .collect();
    apply(
        &workload.namespace().unwrap_or_default(),
        owner,
        wanted,
        ctx,
    )
    .await
}

/// Makes the slices `owner` owns in `namespace` exactly `wanted` (Service name → Hosts to list):
/// applies each that differs and deletes those of Services no longer named.
pub async fn apply(
    namespace: &str,
    owner: OwnerReference,
    wanted: BTreeMap<String, Vec<&Host>>,
    ctx: &Context,
) -> Result<(), Error> {
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), namespace);
    let stale = ctx
        .caches
        .endpoint_slices
        .state()
        .into_iter()
        .filter(|slice| {
            slice.namespace().as_deref() == Some(namespace)
                && slice.owner_references().iter().any(|o| o.uid == owner.uid)
                && !wanted
                    .keys()
                    .any(|service| slice.name_any() == slice_name(service))
        });
    for slice in stale {
        delete(&api, &slice.name_any(), namespace).await?;
    }

    for (service, hosts) in &wanted {
        let name = slice_name(service);
        let existing = ctx
            .caches
            .endpoint_slices
            .get(&ObjectRef::new(&name).within(namespace));
        let desired = desired_slice(
            namespace,
            service,
            owner.clone(),
            hosts,
            existing.as_deref(),
        );
        if let Some(existing) = &existing {
            if up_to_date(existing, &desired) {
                continue;
            }
            // addressType is immutable: a Host of another address family needs a new slice.
            if existing.address_type != desired.address_type {
                delete(&api, &name, namespace).await?;
            }
        }
        api.patch(
            &name,
            &PatchParams::apply(OPERATOR_FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
        .map_err(Error::kube(format!(
            "applying EndpointSlice {namespace}/{name}"
        )))?;
        tracing::info!(namespace, slice = %name, hosts = desired.endpoints.len(), "EndpointSlice updated");
    }
    Ok(())
}

async fn delete(api: &Api<EndpointSlice>, name: &str, namespace: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::Kube {
            what: format!("deleting EndpointSlice {namespace}/{name}"),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::HostSpec;

    fn host(address: &str) -> Host {
        Host::new(
            "h",
            HostSpec {
                address: address.into(),
                http_port: 8080,
                unschedulable: false,
            },
        )
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "weft.dev/v1alpha1".into(),
            kind: "Workload".into(),
            name: "w".into(),
            uid: "u-1".into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    #[test]
    fn address_types() {
        assert_eq!(address_type("198.18.2.3"), "IPv4");
        assert_eq!(address_type("fd00::1"), "IPv6");
        assert_eq!(address_type("agent-0.weft.svc"), "FQDN");
    }

    #[test]
    fn slice_for_a_ready_workload() {
        let slice = desired_slice("ns", "greet", owner(), &[&host("198.18.2.3")], None);
        assert_eq!(slice.metadata.name.as_deref(), Some("greet-weft"));
        assert_eq!(slice.labels()[SERVICE_NAME_LABEL], "greet");
        assert_eq!(slice.labels()[MANAGED_BY_LABEL], "weft.dev-operator");
        assert_eq!(slice.address_type, "IPv4");
        assert_eq!(slice.endpoints[0].addresses, ["198.18.2.3"]);
        let ports = slice.ports.clone().unwrap();
        assert_eq!(ports[0].name.as_deref(), Some("http"));
        assert_eq!(ports[0].port, Some(8080));
        assert_eq!(slice.owner_references()[0].uid, "u-1");
        assert!(up_to_date(&slice, &slice));
    }

    #[test]
    fn a_slice_lists_every_host_once() {
        let (a, b) = (host("198.18.2.4"), host("198.18.2.3"));
        let slice = desired_slice("ns", "greet", owner(), &[&a, &b, &a], None);
        let addresses: Vec<&str> = slice
            .endpoints
            .iter()
            .map(|e| e.addresses[0].as_str())
            .collect();
        assert_eq!(addresses, ["198.18.2.3", "198.18.2.4"]);
    }

    #[test]
    fn slice_without_host_keeps_its_address_type() {
        let fqdn = desired_slice("ns", "greet", owner(), &[&host("agent.local")], None);
        let empty = desired_slice("ns", "greet", owner(), &[], Some(&fqdn));
        assert_eq!(empty.address_type, "FQDN");
        assert!(empty.endpoints.is_empty());
        assert!(!up_to_date(&fqdn, &empty));
        assert_eq!(
            desired_slice("ns", "greet", owner(), &[], None).address_type,
            "IPv4"
        );
    }
}
