//! Host interfaces a Workload needs (`spec.hostInterfaces[]`): WIT interfaces that the host's
//! plugins must provide, with the configuration those plugins need.

use std::collections::BTreeMap;

use kube::KubeSchema;
use semver::Version;
use serde::{Deserialize, Serialize};

use crate::patterns::{SEMVER, WIT_IDENTIFIER};
use crate::wit::{WitInterface, WitParseError, is_wit_identifier};

/// Most host interfaces one Workload may list (bounds the cost of the uniqueness rule).
pub const MAX_HOST_INTERFACES: u32 = 32;

/// A WIT package, or some of its interfaces, that a host plugin must provide to the Workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostInterface {
    /// Namespace of the WIT package, such as `wasi`.
    #[schemars(length(min = 1, max = 63), regex(pattern = WIT_IDENTIFIER))]
    pub namespace: String,

    /// Name of the WIT package, such as `keyvalue`.
    #[schemars(length(min = 1, max = 63), regex(pattern = WIT_IDENTIFIER))]
    pub package: String,

    /// Interfaces of the package the Workload uses, such as `store` and `atomics`. Empty means the package as a whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 63), regex(pattern = WIT_IDENTIFIER)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub interfaces: Vec<String>,

    /// Version of the package, such as `0.2.0` or `0.2.0-draft`. Any version with the same major (or, for 0.x, minor) number matches, except pre-releases, which match only exactly. Unset matches any version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), regex(pattern = SEMVER))]
    pub version: Option<String>,

    /// Settings for the plugin that provides the interface. For `wasi:http`, `host` is the HTTP Host header the Workload answers to (comma-separated, at most 16 names). At most 64 keys, each value at most 4096 bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "config_schema")]
    pub config: BTreeMap<String, String>,

    /// ConfigMaps and Secrets of the Workload's namespace whose every key becomes a `config` value (for a secret such as a password in the wasi:config store). `config` wins over them; of two sources, the later one wins. The same bounds hold for the merged values. Updates reach the running Workload (docs/configuration.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::config_source::MAX_SOURCES))]
    pub config_from: Vec<crate::config_source::ConfigSource>,

    /// Tells apart entries for the same package, each with its own config (for example two key-value buckets). Entries of one package must have distinct names; at most one may go without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = WIT_IDENTIFIER))]
    pub name: Option<String>,
}

impl HostInterface {
    /// The WIT name this entry asks for, such as `wasi:keyvalue/atomics,store@0.2.0-draft`.
    pub fn to_wit(&self) -> Result<WitInterface, WitParseError> {
        WitInterface::try_from(self)
    }
}

impl TryFrom<&HostInterface> for WitInterface {
    type Error = WitParseError;

    /// Checks every part as the WIT parser would: identifiers are kebab-case, the version is semantic.
    fn try_from(host_interface: &HostInterface) -> Result<Self, Self::Error> {
        let input = || {
            let mut name = format!("{}:{}", host_interface.namespace, host_interface.package);
            if !host_interface.interfaces.is_empty() {
                name.push('/');
                name.push_str(&host_interface.interfaces.join(","));
            }
            if let Some(version) = &host_interface.version {
                name.push('@');
                name.push_str(version);
            }
            name
        };
        let check = |kind: &'static str, name: &str| {
            if is_wit_identifier(name) {
                Ok(name.to_owned())
            } else {
                Err(WitParseError::InvalidIdentifier {
                    kind,
                    name: name.to_owned(),
                    input: input(),
                })
            }
        };
        let version = host_interface
            .version
            .as_deref()
            .map(|version| {
                Version::parse(version).map_err(|source| WitParseError::InvalidVersion {
                    version: version.to_owned(),
                    input: input(),
                    reason: source.to_string(),
                })
            })
            .transpose()?;
        Ok(WitInterface {
            namespace: check("namespace", &host_interface.namespace)?,
            package: check("package", &host_interface.package)?,
            interfaces: host_interface
                .interfaces
                .iter()
                .map(|interface| check("interface", interface))
                .collect::<Result<_, _>>()?,
            version,
        })
    }
}

/// Most keys one entry's `config` may have, merged from `configFrom` too.
pub const MAX_CONFIG_KEYS: usize = 64;
/// Longest value of one `config` key, in bytes.
pub const MAX_CONFIG_VALUE: usize = 4096;

/// `config`: at most 64 keys of at most 4 KiB each, so the API server can bound what its rules
/// over it cost (and what a Workload makes every plugin keep).
fn config_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": MAX_CONFIG_KEYS,
        "additionalProperties": {"type": "string", "maxLength": MAX_CONFIG_VALUE},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_wit() {
        let keyvalue = HostInterface {
            namespace: "wasi".into(),
            package: "keyvalue".into(),
            interfaces: vec!["store".into(), "atomics".into()],
            version: Some("0.2.0-draft".into()),
            ..Default::default()
        };
        assert_eq!(
            keyvalue.to_wit().unwrap().to_string(),
            "wasi:keyvalue/atomics,store@0.2.0-draft"
        );

        let config = HostInterface {
            namespace: "wasi".into(),
            package: "config".into(),
            ..Default::default()
        };
        assert_eq!(config.to_wit().unwrap().to_string(), "wasi:config");

        let bad = HostInterface {
            version: Some("latest".into()),
            ..config.clone()
        };
        assert!(matches!(
            bad.to_wit(),
            Err(WitParseError::InvalidVersion { .. })
        ));
        let bad = HostInterface {
            interfaces: vec!["a,b".into()],
            ..config
        };
        assert!(
            matches!(
                bad.to_wit(),
                Err(WitParseError::InvalidIdentifier {
                    kind: "interface",
                    ..
                })
            ),
            "a comma cannot hide inside one interface"
        );
    }
}
