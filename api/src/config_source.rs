//! Values a Workload takes from ConfigMaps and Secrets of its own namespace, as Pods do:
//! a whole object (`envFrom`, `configFrom`) or one key (`env[].valueFrom`). References carry
//! only a name, so a Workload can never name another namespace's objects.

use std::collections::BTreeSet;

use kube::KubeSchema;
use kube::core::{Message, Reason, Rule};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::patterns::{CONFIG_KEY, DNS_SUBDOMAIN};

/// Most sources one list (`envFrom`, `configFrom`) may name.
pub const MAX_SOURCES: u32 = 8;

/// What a source is: a ConfigMap or a Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    ConfigMap,
    Secret,
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ConfigMap => "ConfigMap",
            Self::Secret => "Secret",
        })
    }
}

/// A ConfigMap or Secret of the Workload's namespace, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectRef {
    /// Name of the object, in the Workload's namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN))]
    pub name: String,

    /// Whether the Workload starts without it (and without its values). Defaults to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// Every key of one ConfigMap or Secret, as values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = exactly_one("configMapRef", "secretRef"))]
pub struct ConfigSource {
    /// A ConfigMap whose keys become values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectRef>,

    /// A Secret whose keys become values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectRef>,
}

/// One key of a ConfigMap or Secret of the Workload's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyRef {
    /// Name of the object, in the Workload's namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN))]
    pub name: String,

    /// The key whose value is taken.
    #[schemars(length(min = 1, max = 253), regex(pattern = CONFIG_KEY))]
    pub key: String,

    /// Whether the Workload starts without it (the variable unset). Defaults to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// Where an environment variable's value comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = exactly_one("configMapKeyRef", "secretKeyRef"))]
pub struct EnvVarSource {
    /// A key of a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeyRef>,

    /// A key of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeyRef>,
}

/// The CEL rule that exactly one of two optional fields is set.
fn exactly_one(a: &str, b: &str) -> Rule {
    Rule::new(format!("has(self.{a}) != has(self.{b})"))
        .message(Message::Message(format!("set exactly one of {a} and {b}")))
        .reason(Reason::FieldValueInvalid)
}

impl ConfigSource {
    /// The object it names.
    pub fn object(&self) -> Option<(SourceKind, &LocalObjectRef)> {
        match (&self.config_map_ref, &self.secret_ref) {
            (Some(r), _) => Some((SourceKind::ConfigMap, r)),
            (None, Some(r)) => Some((SourceKind::Secret, r)),
            (None, None) => None,
        }
    }
}

impl EnvVarSource {
    /// The key it names.
    pub fn key(&self) -> Option<(SourceKind, &KeyRef)> {
        match (&self.config_map_key_ref, &self.secret_key_ref) {
            (Some(r), _) => Some((SourceKind::ConfigMap, r)),
            (None, Some(r)) => Some((SourceKind::Secret, r)),
            (None, None) => None,
        }
    }
}

impl crate::WorkloadSpec {
    /// Every ConfigMap and Secret the Workload takes values from.
    pub fn config_sources(&self) -> BTreeSet<(SourceKind, String)> {
        let mut objects = BTreeSet::new();
        for component in self.all_components() {
            for var in &component.env {
                if let Some((kind, key)) = var.value_from.as_ref().and_then(EnvVarSource::key) {
                    objects.insert((kind, key.name.clone()));
                }
            }
            for source in &component.env_from {
                if let Some((kind, r)) = source.object() {
                    objects.insert((kind, r.name.clone()));
                }
            }
        }
        for interface in &self.host_interfaces {
            for source in &interface.config_from {
                if let Some((kind, r)) = source.object() {
                    objects.insert((kind, r.name.clone()));
                }
            }
        }
        objects
    }
}
