//! Outgoing HTTP policy: a component may reach only the hosts its `allowedHosts` lists. With an
//! empty list it reaches nothing.

use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks, default_send_request,
};

/// Host patterns: `api.example.com`, `api.example.com:8443`, or `*.example.com`.
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    allowed: Arc<[String]>,
}

impl EgressPolicy {
    pub fn new(allowed: &[String]) -> Self {
        Self {
            allowed: allowed.iter().map(|h| h.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a request to `authority` (`host` or `host:port`) may leave the host.
    pub fn allows(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        let host = host_of(&authority);
        self.allowed.iter().any(|pattern| {
            if let Some(suffix) = pattern.strip_prefix("*.") {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            } else if pattern.contains(':') && !pattern.starts_with('[') || pattern.contains("]:") {
                *pattern == authority
            } else {
                pattern == host
            }
        })
    }
}

/// `host:port` → `host`; `[::1]:80` → `[::1]`.
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

type ResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for EgressPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> ResponseFuture {
        let authority = request.uri().authority().map(|a| a.to_string());
        let allowed = authority.as_deref().is_some_and(|a| self.allows(a));
        Box::new(async move {
            if !allowed {
                tracing::info!(?authority, "outgoing request denied: not in allowedHosts");
                return Err(HttpError::HttpRequestDenied);
            }
            let (response, io) = default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> EgressPolicy {
        EgressPolicy::new(&hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn empty_policy_denies_everything() {
        assert!(!policy(&[]).allows("example.com"));
    }

    #[test]
    fn matches_hosts_ports_and_wildcards() {
        let p = policy(&["api.example.com", "127.0.0.1:8080", "*.svc.local", "[::1]"]);
        assert!(p.allows("api.example.com"));
        assert!(p.allows("API.example.com:443"));
        assert!(p.allows("127.0.0.1:8080"));
        assert!(!p.allows("127.0.0.1:8081"));
        assert!(p.allows("a.svc.local"));
        assert!(p.allows("a.b.svc.local:80"));
        assert!(!p.allows("svc.local"));
        assert!(!p.allows("evilsvc.local"));
        assert!(p.allows("[::1]:9000"));
        assert!(!p.allows("example.com"));
    }
}
