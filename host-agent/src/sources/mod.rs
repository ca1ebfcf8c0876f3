//! Values a Workload takes from ConfigMaps and Secrets (`env[].valueFrom`, `envFrom`,
//! `hostInterfaces[].configFrom`), written into a copy of it before it is launched, read
//! through a [`Reader`]: the API server in a cluster ([`cluster`]), a directory locally
//! ([`files`]). The one rule of what wins: explicit values over sources, a later source over
//! an earlier one, as for Pods.
//!
//! What is read never appears in an error: errors name the object and the key, not the value.

pub mod cluster;
pub mod files;

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use weft_api::Workload;
use weft_api::config_source::{ConfigSource, SourceKind};
use weft_api::host_interface::{MAX_CONFIG_KEYS, MAX_CONFIG_VALUE};

/// The keys and values of one ConfigMap or Secret.
pub type Data = BTreeMap<String, String>;

/// Why a Workload's values could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{kind} {name} not found in namespace {namespace}")]
    NotFound {
        kind: SourceKind,
        name: String,
        namespace: String,
    },
    #[error("{kind} {name} has no key {key}")]
    NoKey {
        kind: SourceKind,
        name: String,
        key: String,
    },
    #[error("{kind} {name}: the value of {key} is not UTF-8 text")]
    NotText {
        kind: SourceKind,
        name: String,
        key: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error("{kind} {name}: {reason}")]
    Unreadable {
        kind: SourceKind,
        name: String,
        reason: String,
    },
    #[error(
        "the config of host interface {interface} would have {keys} keys, at most {MAX_CONFIG_KEYS}"
    )]
    TooManyKeys { interface: String, keys: usize },
    #[error(
        "{kind} {name}: the value of {key} is over the {MAX_CONFIG_VALUE} bytes a config value may be"
    )]
    TooLong {
        kind: SourceKind,
        name: String,
        key: String,
    },
}

/// Where ConfigMaps and Secrets are read from.
#[async_trait::async_trait]
pub trait Reader: Send + Sync {
    /// The object `name` of `kind` in `namespace`; `None` if there is none.
    async fn read(
        &self,
        kind: SourceKind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Data>, SourceError>;
}

/// A Workload with its values written in, and a fingerprint of what was read (a change of a
/// ConfigMap or Secret it uses changes it).
pub struct Resolved {
    pub workload: Arc<Workload>,
    pub fingerprint: u64,
}

/// `workload` with every value it takes from a ConfigMap or Secret written in; the same
/// Workload, uncopied, when it takes none (most do, and this runs at every resync).
pub async fn resolve(
    workload: Arc<Workload>,
    reader: &dyn Reader,
) -> Result<Resolved, SourceError> {
    let sources = workload.spec.config_sources();
    if sources.is_empty() {
        return Ok(Resolved {
            workload,
            fingerprint: 0,
        });
    }
    let namespace = workload.metadata.namespace.as_deref().unwrap_or("default");
    let mut objects: HashMap<(SourceKind, String), Option<Data>> = HashMap::new();
    for (kind, name) in sources {
        let data = reader.read(kind, namespace, &name).await?;
        objects.insert((kind, name), data);
    }
    let mut fingerprint = std::collections::hash_map::DefaultHasher::new();
    let mut sorted: Vec<_> = objects.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted.hash(&mut fingerprint);

    let found =
        |kind: SourceKind, name: &str, optional: bool| -> Result<Option<&Data>, SourceError> {
            match objects
                .get(&(kind, name.to_owned()))
                .and_then(Option::as_ref)
            {
                Some(data) => Ok(Some(data)),
                None if optional => Ok(None),
                None => Err(SourceError::NotFound {
                    kind,
                    name: name.to_owned(),
                    namespace: namespace.to_owned(),
                }),
            }
        };
    // Every key of each source, later sources winning.
    let merged =
        |sources: &[ConfigSource]| -> Result<Vec<(SourceKind, String, Data)>, SourceError> {
            let mut all = Vec::new();
            for (kind, r) in sources.iter().filter_map(ConfigSource::object) {
                if let Some(data) = found(kind, &r.name, r.optional)? {
                    all.push((kind, r.name.clone(), data.clone()));
                }
            }
            Ok(all)
        };

    let mut resolved = Workload::clone(&workload);
    let spec = &mut resolved.spec;
    let components = spec
        .components
        .iter_mut()
        .chain(spec.service.as_mut().map(|s| &mut s.component));
    for component in components {
        let mut env = Vec::new();
        for (_, _, data) in merged(&component.env_from)? {
            for (key, value) in data {
                // As for Pods: a key that is no variable name is skipped.
                if !key.is_empty() && !key.contains('=') {
                    env.retain(|v: &weft_api::EnvVar| v.name != key);
                    env.push(weft_api::EnvVar {
                        name: key,
                        value,
                        value_from: None,
                    });
                }
            }
        }
        for mut var in std::mem::take(&mut component.env) {
            if let Some((kind, key)) = var.value_from.take().as_ref().and_then(|s| s.key()) {
                let Some(data) = found(kind, &key.name, key.optional)? else {
                    continue;
                };
                match data.get(&key.key) {
                    Some(value) => var.value = value.clone(),
                    None if key.optional => continue,
                    None => {
                        return Err(SourceError::NoKey {
                            kind,
                            name: key.name.clone(),
                            key: key.key.clone(),
                        });
                    }
                }
            }
            env.retain(|v| v.name != var.name);
            env.push(var);
        }
        component.env = env;
        component.env_from.clear();
    }
    for interface in &mut spec.host_interfaces {
        let mut config = BTreeMap::new();
        for (kind, name, data) in merged(&interface.config_from)? {
            for (key, value) in data {
                if value.len() > MAX_CONFIG_VALUE {
                    return Err(SourceError::TooLong { kind, name, key });
                }
                config.insert(key, value);
            }
        }
        config.extend(std::mem::take(&mut interface.config));
        if config.len() > MAX_CONFIG_KEYS {
            return Err(SourceError::TooManyKeys {
                interface: format!("{}:{}", interface.namespace, interface.package),
                keys: config.len(),
            });
        }
        interface.config = config;
        interface.config_from.clear();
    }
    Ok(Resolved {
        workload: Arc::new(resolved),
        fingerprint: fingerprint.finish(),
    })
}

/// Secret values as text: a value that is not UTF-8 is an error naming its key.
pub fn text(
    kind: SourceKind,
    name: &str,
    key: &str,
    bytes: Vec<u8>,
) -> Result<String, SourceError> {
    String::from_utf8(bytes).map_err(|_| SourceError::NotText {
        kind,
        name: name.to_owned(),
        key: key.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Objects in memory, by (kind, name).
    struct Fixed(BTreeMap<(SourceKind, String), Data>);

    #[async_trait::async_trait]
    impl Reader for Fixed {
        async fn read(
            &self,
            kind: SourceKind,
            _: &str,
            name: &str,
        ) -> Result<Option<Data>, SourceError> {
            Ok(self.0.get(&(kind, name.to_owned())).cloned())
        }
    }

    fn workload(extra: &str) -> Workload {
        serde_yaml::from_str(&format!(
            "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: w, namespace: shop}}
spec:
  components:
    - name: c
      image: r/c:1
{extra}"
        ))
        .unwrap()
    }

    fn data(pairs: &[(&str, &str)]) -> Data {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn objects() -> Fixed {
        Fixed(BTreeMap::from([
            (
                (SourceKind::Secret, "db".to_owned()),
                data(&[("password", "s3cret"), ("user", "app")]),
            ),
            (
                (SourceKind::ConfigMap, "settings".to_owned()),
                data(&[("greeting", "hi"), ("user", "from-map"), ("bad=name", "x")]),
            ),
        ]))
    }

    #[tokio::test]
    async fn explicit_values_win_over_sources_and_later_sources_over_earlier() {
        let w = workload(
            "      envFrom: [{configMapRef: {name: settings}}, {secretRef: {name: db}}]
      env:
        - {name: PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}
        - {name: greeting, value: explicit}
  hostInterfaces:
    - namespace: wasi
      package: config
      config: {user: explicit}
      configFrom: [{secretRef: {name: db}}]",
        );
        let resolved = resolve(Arc::new(w.clone()), &objects())
            .await
            .unwrap()
            .workload;
        let component = &resolved.spec.components[0];
        let env: Vec<(&str, &str)> = component
            .env
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("password", "s3cret"),
                ("user", "app"),
                ("PASSWORD", "s3cret"),
                ("greeting", "explicit"),
            ]
        );
        assert!(component.env_from.is_empty());
        let config = &resolved.spec.host_interfaces[0].config;
        assert_eq!(config.get("user").map(String::as_str), Some("explicit"));
        assert_eq!(config.get("password").map(String::as_str), Some("s3cret"));
    }

    #[tokio::test]
    async fn what_is_missing_is_named_and_optional_is_skipped() {
        let missing = workload("      envFrom: [{secretRef: {name: nope}}]");
        let err = resolve(Arc::new(missing.clone()), &objects())
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(err, "Secret nope not found in namespace shop");
        let no_key =
            workload("      env: [{name: X, valueFrom: {secretKeyRef: {name: db, key: token}}}]");
        let err = resolve(Arc::new(no_key.clone()), &objects())
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(err, "Secret db has no key token");
        let optional = workload(
            "      envFrom: [{secretRef: {name: nope, optional: true}}]
      env: [{name: X, valueFrom: {secretKeyRef: {name: db, key: token, optional: true}}}]",
        );
        let resolved = resolve(Arc::new(optional.clone()), &objects())
            .await
            .unwrap()
            .workload;
        assert!(resolved.spec.components[0].env.is_empty());
    }

    /// The API server bounds `config` to 64 keys of 4096 bytes; a Secret named by `configFrom`
    /// is not checked by it, so the same bounds hold after merging, and the refusal names no
    /// value.
    #[tokio::test]
    async fn a_secret_cannot_carry_config_past_its_bounds() {
        let w = workload(
            "  hostInterfaces:
    - namespace: wasi
      package: config
      configFrom: [{secretRef: {name: big}}]",
        );
        let many: Data = (0..=MAX_CONFIG_KEYS)
            .map(|i| (format!("k{i}"), "hidden-value".to_owned()))
            .collect();
        let reader = Fixed(BTreeMap::from([(
            (SourceKind::Secret, "big".to_owned()),
            many,
        )]));
        let err = resolve(Arc::new(w.clone()), &reader).await.err().unwrap();
        assert!(
            matches!(err, SourceError::TooManyKeys { keys, .. } if keys == MAX_CONFIG_KEYS + 1),
            "{err}"
        );
        assert!(!err.to_string().contains("hidden-value"), "{err}");
        assert!(err.to_string().contains("wasi:config"), "{err}");

        let long = data(&[("key", &"x".repeat(MAX_CONFIG_VALUE + 1))]);
        let reader = Fixed(BTreeMap::from([(
            (SourceKind::Secret, "big".to_owned()),
            long,
        )]));
        let err = resolve(Arc::new(w), &reader)
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            format!(
                "Secret big: the value of key is over the {MAX_CONFIG_VALUE} bytes a config value may be"
            )
        );
    }

    #[tokio::test]
    async fn a_changed_value_changes_the_fingerprint() {
        let w = workload("      envFrom: [{secretRef: {name: db}}]");
        let before = resolve(Arc::new(w.clone()), &objects())
            .await
            .unwrap()
            .fingerprint;
        assert_eq!(
            before,
            resolve(Arc::new(w.clone()), &objects())
                .await
                .unwrap()
                .fingerprint
        );
        let mut changed = objects();
        changed
            .0
            .get_mut(&(SourceKind::Secret, "db".to_owned()))
            .unwrap()
            .insert("password".into(), "rotated".into());
        assert_ne!(
            before,
            resolve(Arc::new(w.clone()), &changed)
                .await
                .unwrap()
                .fingerprint
        );
    }
}
