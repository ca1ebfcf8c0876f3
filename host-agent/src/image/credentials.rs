//! Registry credentials in Docker's config format: the user's `~/.docker/config.json` for
//! `host-agent run`, and the `.dockerconfigjson` of `kubernetes.io/dockerconfigjson` Secrets in a
//! cluster. Passwords never reach a log: `Debug` prints registry names only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

#[derive(Clone, Default)]
pub struct Credentials {
    /// Registry host (`registry.example.com:5000`) -> user and password.
    by_registry: BTreeMap<String, (String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_registry.keys()).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{origin}: not a Docker config: {reason}")]
    Invalid { origin: String, reason: String },
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: Option<BTreeMap<String, AuthEntry>>,
    #[serde(flatten)]
    legacy: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl Credentials {
    /// Reads a Docker config file; a missing file means no credentials.
    pub fn from_file(path: &Path) -> Result<Self, CredentialsError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(&bytes, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(CredentialsError::Read {
                path: path.to_path_buf(),
                error,
            }),
        }
    }

    /// Parses `{"auths": {...}}` (config.json, `.dockerconfigjson`) or the legacy map without
    /// `auths` (`.dockercfg`). `origin` names the source in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, CredentialsError> {
        let invalid = |reason: String| CredentialsError::Invalid {
            origin: origin.to_string(),
            reason,
        };
        let config: DockerConfig =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let entries = match config.auths {
            Some(auths) => auths,
            None => config
                .legacy
                .into_iter()
                .filter_map(|(k, v)| Some((k, serde_json::from_value(v).ok()?)))
                .collect(),
        };
        let mut by_registry = BTreeMap::new();
        for (key, entry) in entries {
            let pair = match (entry.username, entry.password, entry.auth) {
                (Some(user), Some(password), _) => Some((user, password)),
                (_, _, Some(auth)) if !auth.is_empty() => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .map_err(|e| invalid(format!("auths.{key}.auth: {e}")))?;
                    let text = String::from_utf8(decoded)
                        .map_err(|_| invalid(format!("auths.{key}.auth: not UTF-8")))?;
                    let (user, password) = text.split_once(':').ok_or_else(|| {
                        invalid(format!(
                            "auths.{key}.auth: expected base64 of user:password"
                        ))
                    })?;
                    Some((user.to_string(), password.to_string()))
                }
                // Entries kept by a credential helper hold no secret here.
                _ => None,
            };
            if let Some(pair) = pair {
                by_registry.insert(normalize(&key), pair);
            }
        }
        Ok(Self { by_registry })
    }

    /// Adds `other`'s entries; entries already here win (the first Secret listed wins, as in
    /// the kubelet).
    pub fn merge(&mut self, other: Credentials) {
        for (k, v) in other.by_registry {
            self.by_registry.entry(k).or_insert(v);
        }
    }

    /// The credentials for `registry`, or anonymous.
    pub fn auth_for(&self, registry: &str) -> RegistryAuth {
        let registry = normalize(registry);
        match self.by_registry.get(&registry) {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }
}

/// What [`fingerprint`] calls a pull that needed no credentials.
pub const ANONYMOUS: &str = "anonymous";

/// A one-way name for `auth`, recorded with a stored image so that a later Workload reuses it
/// only with credentials the registry accepted for it (the kubelet's image credential
/// verification). The secret itself is never stored.
pub fn fingerprint(registry: &str, auth: &RegistryAuth) -> String {
    use sha2::{Digest, Sha256};
    let secret = match auth {
        RegistryAuth::Anonymous => return ANONYMOUS.to_owned(),
        RegistryAuth::Basic(user, password) => format!("basic\0{user}\0{password}"),
        RegistryAuth::Bearer(token) => format!("bearer\0{token}"),
    };
    let digest = Sha256::digest(format!("weft-pull-credential\0{registry}\0{secret}"));
    format!("sha256:{}", hex::encode(digest))
}

/// `https://index.docker.io/v1/` and `docker.io` name the same registry; keys may carry a
/// scheme and a path.
fn normalize(key: &str) -> String {
    let key = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    }
}

/// `$DOCKER_CONFIG/config.json`, or `~/.docker/config.json`.
pub fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(auth: RegistryAuth) -> Option<(String, String)> {
        match auth {
            RegistryAuth::Basic(u, p) => Some((u, p)),
            _ => None,
        }
    }

    #[test]
    fn reads_auth_and_username_password_entries() {
        let json = br#"{"auths": {
            "127.0.0.1:5000": {"auth": "d2VmdDpzM2NyZXQ="},
            "https://index.docker.io/v1/": {"username": "u", "password": "p"},
            "helper.example": {}
        }, "credsStore": "desktop"}"#;
        let creds = Credentials::parse(json, "test").unwrap();
        assert_eq!(
            basic(creds.auth_for("127.0.0.1:5000")),
            Some(("weft".into(), "s3cret".into()))
        );
        assert_eq!(
            basic(creds.auth_for("docker.io")),
            Some(("u".into(), "p".into()))
        );
        assert!(matches!(
            creds.auth_for("helper.example"),
            RegistryAuth::Anonymous
        ));
        assert!(!format!("{creds:?}").contains("s3cret"));
    }

    #[test]
    fn legacy_dockercfg_and_errors() {
        let creds = Credentials::parse(br#"{"r.io": {"auth": "YTpi"}}"#, "legacy").unwrap();
        assert_eq!(
            basic(creds.auth_for("r.io")),
            Some(("a".into(), "b".into()))
        );
        let err = Credentials::parse(br#"{"auths": {"r.io": {"auth": "!!"}}}"#, "secret ns/x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("secret ns/x") && err.contains("auths.r.io.auth"),
            "{err}"
        );
    }
}
