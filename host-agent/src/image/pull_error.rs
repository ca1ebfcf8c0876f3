//! Why an image could not be pulled, in words a `kubectl describe` reader knows.

use oci_client::errors::{OciDistributionError, OciErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("invalid image name {image:?}: {reason}")]
    InvalidReference { image: String, reason: String },
    #[error("image {image:?} is not present on this host and its pull policy is Never")]
    NeverPull { image: String },
    #[error(
        "image {image:?} is on this host, pulled with other credentials than this Workload's, and its pull policy Never forbids checking them with the registry"
    )]
    NeverPullUnverified { image: String },
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error("registry {registry} is refused: {reason}")]
    RegistryRefused { registry: String, reason: String },
    #[error("registry {registry} is unreachable: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error(
        "registry {registry} refused the credentials (401 Unauthorized): check imagePullSecrets or the registry config"
    )]
    Unauthorized { registry: String },
    #[error("registry {registry} denied access to {repository} (403 Forbidden)")]
    Forbidden {
        registry: String,
        repository: String,
    },
    #[error("manifest unknown: {image} does not exist in the registry")]
    ManifestUnknown { image: String },
    #[error("wrong media type: {image} is not a Wasm component ({found})")]
    WrongMediaType { image: String, found: String },
    #[error(
        "digest mismatch: the registry sent content for {expected} that hashes to {actual}; it was discarded"
    )]
    DigestMismatch { expected: String, actual: String },
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },
    #[error(
        "{image}: its manifest names layer {digest}, which its registry does not have (or does not let these credentials read)"
    )]
    BlobNotInRegistry { image: String, digest: String },
    #[error("image store: {0}")]
    Store(#[from] std::io::Error),
}

impl PullError {
    /// The waiting reason reported in status, as the kubelet names it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidReference { .. } => "InvalidImageName",
            Self::NeverPull { .. } | Self::NeverPullUnverified { .. } => "ErrImageNeverPull",
            _ => "ErrImagePull",
        }
    }

    /// Whether trying again later can help: a registry may come back, credentials may be fixed,
    /// a tag may be pushed. An invalid name, a Never policy or a local file cannot change by
    /// waiting.
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            Self::InvalidReference { .. }
                | Self::NeverPull { .. }
                | Self::NeverPullUnverified { .. }
                | Self::File { .. }
        )
    }

    /// Classifies an oci-client error for `image` on `registry`.
    pub fn from_oci(err: OciDistributionError, image: &str, registry: &str) -> Self {
        let registry = registry.to_string();
        let forbidden = || Self::Forbidden {
            registry: registry.clone(),
            repository: image.to_string(),
        };
        match err {
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                Self::Unreachable {
                    registry,
                    reason: root_cause(&e),
                }
            }
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => Self::Unauthorized { registry },
            OciDistributionError::ImageManifestNotFoundError(_) => Self::ManifestUnknown {
                image: image.to_string(),
            },
            OciDistributionError::DigestError(e) => match e {
                oci_client::errors::DigestError::VerificationError { expected, actual } => {
                    Self::DigestMismatch { expected, actual }
                }
                other => Self::Registry {
                    registry,
                    reason: other.to_string(),
                },
            },
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    Self::ManifestUnknown {
                        image: image.to_string(),
                    }
                } else if codes.iter().any(|c| matches!(c, OciErrorCode::Denied)) {
                    forbidden()
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized))
                {
                    Self::Unauthorized { registry }
                } else {
                    Self::Registry {
                        registry,
                        // The codes only: the messages are the registry's words, which a
                        // tenant's registry chooses and status would show to others.
                        reason: envelope
                            .errors
                            .iter()
                            .map(|e| format!("{:?}", e.code))
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                }
            }
            OciDistributionError::ServerError { code: 401, .. } => Self::Unauthorized { registry },
            OciDistributionError::ServerError { code: 403, .. } => forbidden(),
            OciDistributionError::ServerError { code: 404, .. } => Self::ManifestUnknown {
                image: image.to_string(),
            },
            OciDistributionError::ServerError { code, .. } => Self::Registry {
                registry,
                reason: format!("HTTP {code}"),
            },
            OciDistributionError::UnsupportedMediaTypeError(found)
            | OciDistributionError::IncompatibleLayerMediaTypeError(found) => {
                Self::WrongMediaType {
                    image: image.to_string(),
                    found,
                }
            }
            OciDistributionError::ImageIndexParsingNoPlatformResolverError => {
                Self::WrongMediaType {
                    image: image.to_string(),
                    found: "an image index with no Wasm entry".into(),
                }
            }
            other => Self::Registry {
                registry,
                reason: short(&other.to_string()),
            },
        }
    }
}

/// The first line of `reason`, at most 120 characters: status is no place for a body.
fn short(reason: &str) -> String {
    let line = reason.lines().next().unwrap_or_default();
    match line.char_indices().nth(120) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_string(),
    }
}

/// The innermost error: reqwest wraps "connection refused" several layers deep.
fn root_cause(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::{OciEnvelope, OciError};

    fn envelope(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: "m".into(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "u".into(),
        }
    }

    // The distribution registry answers 401 and 404 (asserted end to end); 403 comes from
    // registries with per-repository access control, so its mapping is checked here.
    #[test]
    fn forbidden_is_distinct_from_unauthorized() {
        let e = PullError::from_oci(envelope(OciErrorCode::Denied), "r/a:1", "r");
        assert!(matches!(e, PullError::Forbidden { .. }), "{e}");
        assert!(e.to_string().contains("403 Forbidden"));
        let e = PullError::from_oci(
            OciDistributionError::ServerError {
                code: 403,
                url: "u".into(),
                message: String::new(),
            },
            "r/a:1",
            "r",
        );
        assert!(matches!(e, PullError::Forbidden { .. }), "{e}");
        let e = PullError::from_oci(envelope(OciErrorCode::Unauthorized), "r/a:1", "r");
        assert!(matches!(e, PullError::Unauthorized { .. }), "{e}");
    }

    #[test]
    fn reasons_and_retries() {
        let never = PullError::NeverPull { image: "a".into() };
        assert_eq!(never.reason(), "ErrImageNeverPull");
        assert!(!never.retryable());
        let unknown = PullError::from_oci(envelope(OciErrorCode::ManifestUnknown), "r/a:1", "r");
        assert_eq!(unknown.reason(), "ErrImagePull");
        assert!(unknown.retryable());
    }
}
