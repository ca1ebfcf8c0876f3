//! Outgoing HTTP. Two checks, both needed: the component's `allowedHosts` (names, by the
//! Workload author) and the host's egress rules, applied to the address actually connected to
//! after DNS. Loopback, link-local (cloud metadata), unspecified, multicast and the host's own
//! addresses are refused whatever `allowedHosts` say, unless the host operator allows them;
//! the operator may deny more. The connection goes to exactly the address that was checked, so
//! a name that resolves differently the second time (DNS rebinding) gains nothing.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use http::uri::Scheme;
use http_body_util::BodyExt;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// What the host operator decides about outgoing connections, for every workload.
#[derive(Clone, Debug, Default)]
pub struct EgressRules {
    /// Refused even where the defaults would allow (`--egress-deny`).
    pub deny: Vec<IpNet>,
    /// Allowed even where the defaults refuse (`--egress-allow`), e.g. a loopback test server.
    pub allow: Vec<IpNet>,
    /// The host's own addresses, refused by default: its admin port and the kubelet live there.
    pub own: Vec<IpAddr>,
}

impl EgressRules {
    /// Rules with the host's own addresses read from its network interfaces.
    pub fn with_own_addresses(deny: Vec<IpNet>, allow: Vec<IpNet>) -> Self {
        let own = if_addrs::get_if_addrs()
            .map(|ifs| ifs.into_iter().map(|i| i.ip()).collect())
            .unwrap_or_else(|err| {
                tracing::warn!(%err, "cannot list this host's addresses; refusing only the defaults");
                Vec::new()
            });
        Self { deny, allow, own }
    }

    /// Why connecting to `ip` is refused, if it is.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        let ip = ip.to_canonical();
        self.refused(ip).map(|refused| match refused {
            Refused::Denied(net) => format!("{ip} is in {net}, denied by the host (--egress-deny)"),
            Refused::ByDefault(kind) => format!(
                "{ip} is {kind}; the host refuses it unless its operator allows it (--egress-allow)"
            ),
        })
    }

    /// The rule that refuses `ip`, if one does; what the refusal says is the caller's (its flag
    /// names differ).
    pub fn refused(&self, ip: IpAddr) -> Option<Refused> {
        let ip = ip.to_canonical();
        if let Some(net) = self.deny.iter().find(|n| n.contains(&ip)) {
            return Some(Refused::Denied(*net));
        }
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        let kind = if ip.is_loopback() {
            "a loopback address"
        } else if ip.is_unspecified() {
            "the unspecified address"
        } else if ip.is_multicast() {
            "a multicast address"
        } else if is_link_local(ip) {
            "a link-local address (where cloud metadata lives)"
        } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
            "the broadcast address"
        } else if self.own.iter().any(|own| own.to_canonical() == ip) {
            "an address of this host"
        } else {
            return None;
        };
        Some(Refused::ByDefault(kind))
    }
}

/// Why an address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// It is in a network the operator denied.
    Denied(IpNet),
    /// It is of a kind refused unless allowed (`a loopback address`, …).
    ByDefault(&'static str),
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// One component's outgoing HTTP policy: its `allowedHosts` patterns (`api.example.com`,
/// `api.example.com:8443`, `*.example.com`; empty allows none) and the host's rules.
#[derive(Clone, Debug)]
pub struct EgressPolicy {
    allowed: Arc<[String]>,
    rules: Arc<EgressRules>,
}

impl EgressPolicy {
    pub fn new(allowed: &[String], rules: Arc<EgressRules>) -> Self {
        Self {
            allowed: allowed.iter().map(|h| h.to_ascii_lowercase()).collect(),
            rules,
        }
    }

    /// Whether `allowedHosts` lets a request to `authority` (`host` or `host:port`) leave.
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

type IoFuture = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;
type ResponseFuture = Box<
    dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, IoFuture)>> + Send,
>;

impl WasiHttpHooks for EgressPolicy {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> ResponseFuture {
        // Called within the sending invocation: the request continues its trace.
        crate::trace_context::inject(request.headers_mut());
        let policy = self.clone();
        Box::new(async move { policy.send(request, options).await })
    }

    // What an unsent request's body holds on the host is one resource's buffer at most (see
    // `store::max_resources`), not Wasmtime's default of 1 MiB.
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        crate::store::RESOURCE_BUFFER_BYTES
    }

    fn p3_outgoing_body_chunk_size(&mut self) -> usize {
        crate::store::RESOURCE_BUFFER_BYTES
    }
}

impl EgressPolicy {
    async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> wasmtime_wasi_http::Result<(http::Response<WasiBody>, IoFuture)> {
        let uri = request.uri();
        let authority = uri
            .authority()
            .ok_or(HttpError::HttpRequestUriInvalid)?
            .clone();
        if !self.allows(authority.as_str()) {
            tracing::info!(%authority, "outgoing request denied: not in allowedHosts");
            return Err(HttpError::HttpRequestDenied);
        }
        let tls = uri.scheme() == Some(&Scheme::HTTPS);
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let connect_timeout = options
            .and_then(|o| o.connect_timeout)
            .unwrap_or(Duration::from_secs(30));
        let first_byte_timeout = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(Duration::from_secs(600));

        let stream = self.connect(host, port, connect_timeout).await?;
        // Origin-form on the wire: scheme and authority are for proxies.
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let exchange = async {
            if tls {
                let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
                let stream = tokio_rustls::TlsConnector::from(TLS.clone())
                    .connect(name, stream)
                    .await
                    .map_err(HttpError::Tls)?;
                exchange(stream, request).await
            } else {
                exchange(stream, request).await
            }
        };
        tokio::time::timeout(first_byte_timeout, exchange)
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
    }

    /// Resolves `host` and connects to the first address the host's rules allow.
    async fn connect(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> wasmtime_wasi_http::Result<TcpStream> {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
                    Err(_) => return Err(HttpError::DnsTimeout),
                    Ok(Err(err)) => {
                        return Err(HttpError::DnsError {
                            rcode: Some(err.to_string()),
                            info_code: None,
                        });
                    }
                    Ok(Ok(addrs)) => addrs.collect(),
                }
            }
        };
        let mut last = HttpError::DestinationIpProhibited;
        for addr in addrs {
            if let Some(reason) = self.rules.refusal(addr.ip()) {
                tracing::warn!(host, %addr, "outgoing request refused: {reason}");
                continue;
            }
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(err)) => last = HttpError::Connect(err),
                Err(_) => last = HttpError::ConnectionTimeout,
            }
        }
        Err(last)
    }
}

static TLS: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    // The provider is named: more than one may be compiled in, and then the default panics.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
});

/// One HTTP/1.1 exchange on a connected stream; the connection is driven by its own task.
async fn exchange<S>(
    stream: S,
    request: http::Request<WasiBody>,
) -> wasmtime_wasi_http::Result<(http::Response<WasiBody>, IoFuture)>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let io: IoFuture = Box::new(async move {
        match driver.await {
            Ok(result) => result.map_err(HttpError::from),
            Err(_) => Ok(()),
        }
    });
    Ok((
        response.map(|body| body.map_err(HttpError::from).boxed_unsync()),
        io,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> EgressPolicy {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        EgressPolicy::new(&hosts, Arc::default())
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

    #[test]
    fn refuses_local_and_metadata_addresses_unless_allowed() {
        let rules = EgressRules {
            deny: vec!["203.0.113.0/24".parse().unwrap()],
            allow: vec!["127.0.0.1/32".parse().unwrap()],
            own: vec!["198.18.0.5".parse().unwrap()],
        };
        let refused = |ip: &str| rules.refusal(ip.parse().unwrap());
        assert!(refused("169.254.169.254").unwrap().contains("link-local"));
        assert!(refused("fe80::1").unwrap().contains("link-local"));
        assert!(refused("::1").unwrap().contains("loopback"));
        assert!(refused("127.0.0.2").unwrap().contains("loopback"));
        assert!(refused("::ffff:127.0.0.2").unwrap().contains("loopback"));
        assert!(refused("0.0.0.0").unwrap().contains("unspecified"));
        assert!(refused("198.18.0.5").unwrap().contains("this host"));
        assert!(refused("203.0.113.7").unwrap().contains("--egress-deny"));
        assert_eq!(refused("127.0.0.1"), None);
        assert_eq!(refused("198.18.0.6"), None);
    }
}
