//! WIT interface names (`wasi:keyvalue/store,atomics@0.2.0-draft`) and the version matching
//! Wasmtime's linker applies to them.
//!
//! The text form is `namespace:package[/interface[,interface…]][@version]`:
//! - `wasi:http/incoming-handler@0.2.0`: one interface of a package;
//! - `wasi:keyvalue/atomics,store@0.2.0-draft`: several interfaces of one package;
//! - `wasi:config@0.2.0-draft`: the package as a whole (no interface list);
//! - `wasi:io/streams`: no version, which matches any version.
//!
//! The interface list is a set: [`Display`](fmt::Display) writes it sorted, so
//! `wasi:keyvalue/store,atomics` reads back as `wasi:keyvalue/atomics,store`. Strings already in
//! that canonical order round-trip byte for byte.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use semver::Version;

/// A WIT package, or a set of interfaces of one package, with an optional version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WitInterface {
    /// The package namespace, such as `wasi`.
    pub namespace: String,
    /// The package name, such as `keyvalue`.
    pub package: String,
    /// Interfaces of the package; empty means the package as a whole.
    pub interfaces: BTreeSet<String>,
    /// The package version; `None` matches any version.
    pub version: Option<Version>,
}

/// Why a string is not a WIT interface name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WitParseError {
    /// The `:` between namespace and package is missing.
    #[error("`{0}` is not a WIT name: expected `namespace:package[/interface[,…]][@version]`")]
    MissingNamespace(String),
    /// A namespace, package or interface name is not a kebab-case WIT identifier.
    #[error(
        "invalid {kind} `{name}` in `{input}`: WIT identifiers are kebab-case words of letters and digits, each word starting with a letter (e.g. `incoming-handler`)"
    )]
    InvalidIdentifier {
        /// What the identifier names: `namespace`, `package` or `interface`.
        kind: &'static str,
        /// The offending identifier.
        name: String,
        /// The whole input.
        input: String,
    },
    /// A `/` is followed by no interface name.
    #[error("`{0}` has a `/` but no interface after it")]
    EmptyInterfaceList(String),
    /// The text after `@` is not a semantic version.
    #[error("invalid version `{version}` in `{input}`: {reason}")]
    InvalidVersion {
        /// The text after `@`.
        version: String,
        /// The whole input.
        input: String,
        /// Why it is not a semantic version.
        reason: String,
    },
    /// [`WitInterface::from_component_name`] needs exactly one interface.
    #[error(
        "`{0}` is not a component import/export name: expected exactly one interface, as in `wasi:http/types@0.2.4`"
    )]
    NotSingleInterface(String),
}

impl WitInterface {
    /// A package-level name (no interfaces) with an optional version.
    pub fn package(
        namespace: impl Into<String>,
        package: impl Into<String>,
        version: Option<Version>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            package: package.into(),
            interfaces: BTreeSet::new(),
            version,
        }
    }

    /// Parses the name a component uses for one imported or exported interface, such as
    /// `wasi:http/types@0.2.4`. Exactly one interface must be named.
    pub fn from_component_name(name: &str) -> Result<Self, WitParseError> {
        let wit: Self = name.parse()?;
        if wit.interfaces.len() != 1 {
            return Err(WitParseError::NotSingleInterface(name.to_owned()));
        }
        Ok(wit)
    }

    /// `namespace:package`, without interfaces or version.
    pub fn package_name(&self) -> String {
        format!("{}:{}", self.namespace, self.package)
    }

    /// Whether `self`, offered by a provider (a host plugin, a sibling component), satisfies
    /// `import`: same namespace and package, compatible versions (see [`version_compatible`]), and
    /// every interface `import` names is among `self`'s. A provider with no interface list offers
    /// the whole package; an import with no interface list asks for the package and is satisfied
    /// by any provider of it.
    pub fn satisfies(&self, import: &WitInterface) -> bool {
        self.namespace == import.namespace
            && self.package == import.package
            && version_compatible(self.version.as_ref(), import.version.as_ref())
            && (self.interfaces.is_empty() || import.interfaces.is_subset(&self.interfaces))
    }

    /// Whether the `providers` together satisfy `self`: each interface `self` names is satisfied
    /// by at least one provider (so a host listing `wasi:keyvalue/store` and
    /// `wasi:keyvalue/atomics` separately satisfies `wasi:keyvalue/atomics,store`). With no
    /// interface list, any provider of the package will do.
    pub fn satisfied_by<'a>(&self, providers: impl IntoIterator<Item = &'a WitInterface>) -> bool {
        let providers: Vec<&WitInterface> = providers.into_iter().collect();
        if self.interfaces.is_empty() {
            return providers.iter().any(|p| p.satisfies(self));
        }
        self.interfaces.iter().all(|interface| {
            let one = WitInterface {
                interfaces: BTreeSet::from([interface.clone()]),
                ..self.clone()
            };
            providers.iter().any(|p| p.satisfies(&one))
        })
    }
}

/// Whether a provider at version `a` can serve an import of version `b` (the relation is
/// symmetric), as Wasmtime's linker decides:
/// - `None` on either side matches anything;
/// - a version with a pre-release part (`0.2.0-draft`) matches only the identical version;
/// - otherwise versions on the same compatibility track match: the same major version if it is
///   above 0 (`1.2.0` ~ `1.0.5`), else the same minor if above 0 (`0.2.0` ~ `0.2.6`), else the
///   identical patch (`0.0.3` ~ `0.0.3` only). Neither side needs to be newer than the other.
pub fn version_compatible(a: Option<&Version>, b: Option<&Version>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return true;
    };
    if !a.pre.is_empty() || !b.pre.is_empty() {
        return a.major == b.major && a.minor == b.minor && a.patch == b.patch && a.pre == b.pre;
    }
    if a.major != b.major {
        return false;
    }
    if a.major > 0 {
        return true;
    }
    if a.minor != b.minor {
        return false;
    }
    a.minor > 0 || a.patch == b.patch
}

/// Whether `s` is a WIT identifier: kebab-case words, the first starting with a letter, each all
/// lower-case (`incoming-handler`, `http2`) or all upper-case (`HTTP`). This is the same rule as
/// the CRD's `WIT_IDENTIFIER` pattern.
pub fn is_wit_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').enumerate().all(|(i, word)| {
            let Some(first) = word.chars().next() else {
                return false;
            };
            if i == 0 && !first.is_ascii_alphabetic() {
                return false;
            }
            word.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                || word
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
}

impl FromStr for WitInterface {
    type Err = WitParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (name, version) = match input.split_once('@') {
            Some((name, version)) => {
                let parsed =
                    Version::parse(version).map_err(|source| WitParseError::InvalidVersion {
                        version: version.to_owned(),
                        input: input.to_owned(),
                        reason: source.to_string(),
                    })?;
                (name, Some(parsed))
            }
            None => (input, None),
        };
        let (package_name, interfaces) = match name.split_once('/') {
            Some((package_name, list)) => (package_name, Some(list)),
            None => (name, None),
        };
        let (namespace, package) = package_name
            .split_once(':')
            .ok_or_else(|| WitParseError::MissingNamespace(input.to_owned()))?;

        let check = |kind: &'static str, name: &str| {
            if is_wit_identifier(name) {
                Ok(name.to_owned())
            } else {
                Err(WitParseError::InvalidIdentifier {
                    kind,
                    name: name.to_owned(),
                    input: input.to_owned(),
                })
            }
        };
        let namespace = check("namespace", namespace)?;
        let package = check("package", package)?;
        let interfaces = match interfaces {
            None => BTreeSet::new(),
            Some("") => return Err(WitParseError::EmptyInterfaceList(input.to_owned())),
            Some(list) => list
                .split(',')
                .map(|interface| check("interface", interface))
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            namespace,
            package,
            interfaces,
            version,
        })
    }
}

impl fmt::Display for WitInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.package)?;
        let mut separator = '/';
        for interface in &self.interfaces {
            write!(f, "{separator}{interface}")?;
            separator = ',';
        }
        if let Some(version) = &self.version {
            write!(f, "@{version}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wit(s: &str) -> WitInterface {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn round_trips_canonical_names() {
        for s in [
            "wasi:keyvalue/atomics,store@0.2.0-draft",
            "wasi:http/incoming-handler@0.2.0",
            "wasi:config@0.2.0-draft",
            "weft:examples/greet@0.1.0",
            "wasi:io/streams",
            "wasi:cli",
        ] {
            assert_eq!(wit(s).to_string(), s);
        }
    }

    #[test]
    fn interface_list_is_a_set() {
        let w = wit("wasi:keyvalue/store,atomics@0.2.0-draft");
        assert_eq!(w.namespace, "wasi");
        assert_eq!(w.package, "keyvalue");
        assert_eq!(
            w.interfaces,
            BTreeSet::from(["store".to_owned(), "atomics".to_owned()])
        );
        assert_eq!(w.version, Some(v("0.2.0-draft")));
        assert_eq!(w, wit("wasi:keyvalue/atomics,store,store@0.2.0-draft"));
        assert_eq!(w.to_string(), "wasi:keyvalue/atomics,store@0.2.0-draft");
        assert_eq!(wit(&w.to_string()), w);
    }

    #[test]
    fn package_level_and_unversioned() {
        let config = wit("wasi:config@0.2.0-draft");
        assert!(config.interfaces.is_empty());
        assert_eq!(config.package_name(), "wasi:config");
        assert_eq!(
            config,
            WitInterface::package("wasi", "config", Some(v("0.2.0-draft")))
        );
        assert_eq!(wit("wasi:io/streams").version, None);
    }

    #[test]
    fn component_names() {
        let types = WitInterface::from_component_name("wasi:http/types@0.2.4").unwrap();
        assert_eq!(types.interfaces, BTreeSet::from(["types".to_owned()]));
        assert_eq!(types.version, Some(v("0.2.4")));
        assert_eq!(
            WitInterface::from_component_name("wasi:config@0.2.0"),
            Err(WitParseError::NotSingleInterface(
                "wasi:config@0.2.0".into()
            ))
        );
        assert!(WitInterface::from_component_name("wasi:keyvalue/store,atomics").is_err());
        assert!(WitInterface::from_component_name("greet").is_err());
    }

    #[test]
    fn rejects_malformed_names_clearly() {
        let err = |s: &str| s.parse::<WitInterface>().unwrap_err();
        assert!(matches!(err("wasi"), WitParseError::MissingNamespace(_)));
        assert!(matches!(
            err("wasi/http"),
            WitParseError::MissingNamespace(_)
        ));
        assert!(matches!(
            err("wasi:http/"),
            WitParseError::EmptyInterfaceList(_)
        ));
        assert!(matches!(
            err("wasi:http/types,"),
            WitParseError::InvalidIdentifier {
                kind: "interface",
                ..
            }
        ));
        assert!(matches!(
            err(":http"),
            WitParseError::InvalidIdentifier {
                kind: "namespace",
                ..
            }
        ));
        assert!(matches!(
            err("wasi:Http"),
            WitParseError::InvalidIdentifier {
                kind: "package",
                ..
            }
        ));
        assert!(matches!(
            err("wasi:http/incoming_handler"),
            WitParseError::InvalidIdentifier { .. }
        ));
        assert!(matches!(
            err("wasi:http@0.2"),
            WitParseError::InvalidVersion { .. }
        ));
        let message = err("wasi:http@latest").to_string();
        assert!(message.contains("invalid version `latest`"), "{message}");
    }

    #[test]
    fn identifiers() {
        for ok in [
            "http",
            "incoming-handler",
            "http2",
            "HTTP",
            "my-HTTP-2",
            "a",
        ] {
            assert!(is_wit_identifier(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "2http", "Http", "a_b", "a.b", "ünï"] {
            assert!(!is_wit_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn version_tracks() {
        let ok = |a: &str, b: &str| version_compatible(Some(&v(a)), Some(&v(b)));
        // major > 0: same major, either direction
        assert!(ok("1.2.0", "1.0.5"));
        assert!(ok("1.0.5", "1.2.0"));
        assert!(!ok("2.0.0", "1.9.0"));
        // 0.minor: same minor
        assert!(ok("0.2.0", "0.2.6"));
        assert!(ok("0.2.6", "0.2.0"));
        assert!(!ok("0.2.0", "0.3.0"));
        // 0.0.patch: exact
        assert!(ok("0.0.3", "0.0.3"));
        assert!(!ok("0.0.3", "0.0.4"));
        // pre-release: exact only
        assert!(ok("0.2.0-draft", "0.2.0-draft"));
        assert!(!ok("0.2.0-draft", "0.2.0"));
        assert!(!ok("0.2.0", "0.2.0-draft"));
        assert!(!ok("0.2.0-draft", "0.2.1-draft"));
        assert!(!ok("0.2.0-draft", "0.2.0-draft2"));
        // none matches anything
        assert!(version_compatible(None, Some(&v("0.2.0-draft"))));
        assert!(version_compatible(Some(&v("1.0.0")), None));
        assert!(version_compatible(None, None));
    }

    #[test]
    fn satisfies_imports() {
        let provider = wit("wasi:keyvalue/atomics,store@0.2.0-draft");
        assert!(provider.satisfies(&wit("wasi:keyvalue/store@0.2.0-draft")));
        assert!(provider.satisfies(&wit("wasi:keyvalue/store,atomics@0.2.0-draft")));
        assert!(provider.satisfies(&wit("wasi:keyvalue/store")));
        assert!(provider.satisfies(&wit("wasi:keyvalue@0.2.0-draft")));
        assert!(!provider.satisfies(&wit("wasi:keyvalue/batch@0.2.0-draft")));
        assert!(!provider.satisfies(&wit("wasi:keyvalue/store@0.2.0")));
        assert!(!provider.satisfies(&wit("wasi:blobstore/store@0.2.0-draft")));
        assert!(!provider.satisfies(&wit("wasix:keyvalue/store@0.2.0-draft")));

        let whole_package = wit("wasi:http@0.2.4");
        assert!(whole_package.satisfies(&wit("wasi:http/types@0.2.0")));
        assert!(whole_package.satisfies(&wit("wasi:http/incoming-handler,outgoing-handler")));
        assert!(!whole_package.satisfies(&wit("wasi:http/types@0.3.0")));

        let unversioned = wit("wasi:config/store");
        assert!(unversioned.satisfies(&wit("wasi:config/store@0.2.0-draft")));
    }

    #[test]
    fn satisfied_by_several_providers() {
        let store = wit("wasi:keyvalue/store@0.2.0-draft");
        let atomics = wit("wasi:keyvalue/atomics@0.2.0-draft");
        let http = wit("wasi:http/incoming-handler@0.2.0");
        let need = wit("wasi:keyvalue/store,atomics@0.2.0-draft");
        assert!(need.satisfied_by([&store, &atomics, &http]));
        assert!(!need.satisfied_by([&store, &http]));
        assert!(wit("wasi:keyvalue@0.2.0-draft").satisfied_by([&atomics]));
        assert!(!wit("wasi:keyvalue@0.2.0-draft").satisfied_by([&http]));
        assert!(!need.satisfied_by([]));
    }
}
