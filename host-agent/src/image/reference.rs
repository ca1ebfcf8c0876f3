//! What a component's `image` names: a file on this machine (`host-agent run` only) or an OCI
//! reference, and which pull policy applies to it.

use std::path::{Path, PathBuf};

use oci_client::Reference;
use weft_api::PullPolicy;

use super::PullError;

/// Where a component's bytes come from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    /// A component file, relative to the manifest that names it.
    File(PathBuf),
    /// An image in an OCI registry.
    Registry(Reference),
}

impl ImageSource {
    /// Reads `image` as a file path when `files_from` is given (local mode) and it looks like one:
    /// it starts with `/` or `.`, or ends with `.wasm`. Anything else is an OCI reference.
    pub fn parse(image: &str, files_from: Option<&Path>) -> Result<Self, PullError> {
        let image = image.trim();
        if let Some(base) = files_from
            && looks_like_path(image)
        {
            return Ok(Self::File(base.join(image)));
        }
        if looks_like_path(image) && !image.contains(':') {
            return Err(PullError::InvalidReference {
                image: image.to_string(),
                reason: "a file path is accepted only by `host-agent run`; in a cluster, push the \
                         component (`host-agent push`) and name the reference"
                    .into(),
            });
        }
        image
            .parse::<Reference>()
            .map(Self::Registry)
            .map_err(|e| PullError::InvalidReference {
                image: image.to_string(),
                reason: e.to_string(),
            })
    }
}

fn looks_like_path(image: &str) -> bool {
    image.starts_with('/') || image.starts_with('.') || image.ends_with(".wasm")
}

/// The policy that applies when the Workload sets none: as for Pods, `Always` for `:latest` or an
/// untagged image, `IfNotPresent` otherwise (a digest reference never changes).
pub fn effective_policy(image: &str, policy: Option<PullPolicy>) -> PullPolicy {
    if let Some(policy) = policy {
        return policy;
    }
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        PullPolicy::IfNotPresent
    } else {
        match name.split_once(':') {
            Some((_, tag)) if tag != "latest" => PullPolicy::IfNotPresent,
            _ => PullPolicy::Always,
        }
    }
}

/// Plain HTTP is used only for loopback registries and those the host's operator lists as
/// insecure; everything else is HTTPS.
pub fn is_plain_http(registry: &str, insecure: &[String]) -> bool {
    if insecure.iter().any(|r| r == registry) {
        return true;
    }
    let host = match registry.rsplit_once(':') {
        // `[::1]:5000` and `127.0.0.1:5000`; a bare IPv6 address has more than one colon.
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_only_in_local_mode() {
        let base = Path::new("/m");
        assert!(matches!(
            ImageSource::parse("build/x.wasm", Some(base)),
            Ok(ImageSource::File(p)) if p == Path::new("/m/build/x.wasm")
        ));
        assert!(matches!(
            ImageSource::parse("./x.wasm", None),
            Err(PullError::InvalidReference { .. })
        ));
        assert!(matches!(
            ImageSource::parse("127.0.0.1:5000/team/api:1.4", Some(base)),
            Ok(ImageSource::Registry(r)) if r.registry() == "127.0.0.1:5000" && r.tag() == Some("1.4")
        ));
        assert!(matches!(
            ImageSource::parse("no spaces allowed:1", None),
            Err(PullError::InvalidReference { .. })
        ));
    }

    #[test]
    fn default_policy_follows_pods() {
        use PullPolicy::*;
        assert_eq!(effective_policy("r.io/a/b", None), Always);
        assert_eq!(effective_policy("r.io/a/b:latest", None), Always);
        assert_eq!(effective_policy("r.io:5000/a/b", None), Always);
        assert_eq!(effective_policy("r.io:5000/a/b:1.4", None), IfNotPresent);
        assert_eq!(effective_policy("r.io/a/b@sha256:00", None), IfNotPresent);
        assert_eq!(effective_policy("r.io/a/b:1.4", Some(Never)), Never);
    }

    #[test]
    fn plain_http_only_for_loopback_and_listed() {
        let insecure = vec!["registry.internal:5000".to_string()];
        assert!(is_plain_http("127.0.0.1:5000", &insecure));
        assert!(is_plain_http("localhost:5000", &insecure));
        assert!(is_plain_http("[::1]:5000", &insecure));
        assert!(is_plain_http("registry.internal:5000", &insecure));
        assert!(!is_plain_http("registry.internal", &insecure));
        assert!(!is_plain_http("10.0.0.1:5000", &insecure));
    }
}
