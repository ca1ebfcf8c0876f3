//! Where the agent may fetch images from. A tenant's image reference chooses the host the agent
//! connects to, so without rules a pull is a request forgery: `127.0.0.1:9090/x:1` reaches the
//! agent's own ports, a cluster address another tenant's listener. Every registry connection
//! goes through [`RegistryProxy`], a proxy on loopback inside the agent that connects only to an
//! address [`RegistryRules`] allow, and to exactly the address it checked; redirects (blob
//! downloads are often redirected to storage) come back through it and are checked the same way.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use weft_runtime::{EgressRules, Refused};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Refusals remembered for the puller to report; older ones are dropped past this many.
const REMEMBERED: usize = 1024;

/// Networks refused to registries unless allowed, besides what Workloads' egress refuses:
/// cluster Pods and Services live here.
static PRIVATE: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
    ]
    .iter()
    .map(|n| n.parse().unwrap())
    .collect()
});

/// Which registry addresses the agent may connect to.
#[derive(Clone, Debug)]
pub struct RegistryRules {
    /// The Workloads' rules without their allowances: loopback, link-local, this host's own
    /// addresses, `--egress-deny`.
    egress: EgressRules,
    /// `--registry-allow`: networks where the operator runs registries.
    allow: Vec<IpNet>,
}

impl RegistryRules {
    pub fn new(egress: EgressRules, allow: Vec<IpNet>) -> Self {
        let egress = EgressRules {
            allow: Vec::new(),
            ..egress
        };
        Self { egress, allow }
    }

    /// Why a registry at `ip` is refused, if it is.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        let ip = ip.to_canonical();
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        let kind = match self.egress.refused(ip) {
            Some(Refused::Denied(net)) => format!("in {net}, denied by the host (--egress-deny)"),
            Some(Refused::ByDefault(kind)) => kind.to_string(),
            None if PRIVATE.iter().any(|n| n.contains(&ip)) => "a private address".to_string(),
            None => return None,
        };
        Some(format!(
            "{ip} is {kind}; the host pulls from there only if its operator allows it \
             (--registry-allow)"
        ))
    }
}

/// The registry clients' proxy: `http://127.0.0.1:<port>` for plain HTTP and HTTPS alike.
pub struct RegistryProxy {
    addr: SocketAddr,
    /// Why a registry (`host:port`) was last refused, for the pull's status.
    refused: Arc<Mutex<HashMap<String, String>>>,
    serving: tokio::task::JoinHandle<()>,
}

impl Drop for RegistryProxy {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

impl RegistryProxy {
    /// Listens on an ephemeral loopback port.
    pub async fn start(rules: RegistryRules) -> std::io::Result<Self> {
        let listener = TcpListener::bind((IpAddr::from([127, 0, 0, 1]), 0)).await?;
        let addr = listener.local_addr()?;
        let refused = Arc::new(Mutex::new(HashMap::new()));
        let proxy = Arc::new(Proxy {
            rules,
            refused: refused.clone(),
        });
        let serving = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let proxy = proxy.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let proxy = proxy.clone();
                        async move { Ok::<_, Infallible>(proxy.handle(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            refused,
            serving,
        })
    }

    /// The proxy URL for registry clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Why `registry` (`host:port`, or `host` for the default port) was refused, if it was.
    pub fn refusal(&self, registry: &str) -> Option<String> {
        let refused = self.refused.lock();
        [
            registry.to_string(),
            format!("{registry}:443"),
            format!("{registry}:80"),
        ]
        .iter()
        .find_map(|key| refused.get(key).cloned())
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

struct Proxy {
    rules: RegistryRules,
    refused: Arc<Mutex<HashMap<String, String>>>,
}

impl Proxy {
    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let Some(authority) = request.uri().authority().cloned() else {
            return plain(
                StatusCode::BAD_REQUEST,
                "a proxy request names its host".into(),
            );
        };
        let connect = request.method() == Method::CONNECT;
        let port = authority
            .port_u16()
            .unwrap_or(if connect { 443 } else { 80 });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let stream = match self.dial(host, port).await {
            Ok(stream) => stream,
            Err(why) => {
                tracing::warn!(registry = %authority, %why, "registry connection refused");
                let mut refused = self.refused.lock();
                if refused.len() >= REMEMBERED {
                    refused.clear();
                }
                refused.insert(authority.to_string(), why.clone());
                return plain(StatusCode::FORBIDDEN, why);
            }
        };
        if connect {
            tokio::spawn(async move {
                if let Ok(upgraded) = hyper::upgrade::on(request).await {
                    let mut stream = stream;
                    let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut stream)
                        .await;
                }
            });
            return plain(StatusCode::OK, String::new());
        }
        match forward(stream, request).await {
            Ok(response) => response,
            Err(error) => plain(StatusCode::BAD_GATEWAY, format!("registry: {error}")),
        }
    }

    /// A connection to the first address of `host` the rules allow, or why there is none.
    async fn dial(&self, host: &str, port: u16) -> Result<TcpStream, String> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        let mut why = format!("{host} has no address");
        for address in addresses {
            if let Some(refusal) = self.rules.refusal(address.ip()) {
                why = match host.parse::<IpAddr>() {
                    Ok(_) => refusal,
                    Err(_) => format!("{host}: {refusal}"),
                };
                continue;
            }
            return match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(e)) => Err(format!("{address}: {e}")),
                Err(_) => Err(format!("{address}: connect timed out")),
            };
        }
        Err(why)
    }
}

/// Sends a plain-HTTP request on `stream` in origin form, as the registry expects it.
async fn forward(
    stream: TcpStream,
    request: Request<Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let (mut parts, body) = request.into_parts();
    if let Some(path) = parts.uri.path_and_query() {
        parts.uri = path.as_str().parse().expect("a path is a URI");
    }
    parts.headers.remove("proxy-connection");
    parts.headers.remove(http::header::PROXY_AUTHORIZATION);
    let response = sender
        .send_request(Request::from_parts(parts, body))
        .await?;
    Ok(response.map(BodyExt::boxed))
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_refused_where_tenants_and_the_host_live() {
        let own: IpAddr = "10.244.0.7".parse().unwrap();
        let egress = EgressRules {
            deny: vec!["203.0.113.0/24".parse().unwrap()],
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            own: vec![own],
        };
        let rules = RegistryRules::new(egress, vec!["10.96.5.0/24".parse().unwrap()]);
        let refused = |ip: &str| rules.refusal(ip.parse().unwrap());
        // The Workloads' egress allowances do not carry over to registries.
        assert!(refused("127.0.0.1").unwrap().contains("loopback"));
        assert!(refused("169.254.169.254").unwrap().contains("link-local"));
        assert!(
            refused("10.244.0.7")
                .unwrap()
                .contains("address of this host")
        );
        assert!(refused("203.0.113.9").unwrap().contains("--egress-deny"));
        assert!(refused("10.1.2.3").unwrap().contains("a private address"));
        assert!(refused("::ffff:192.168.1.1").unwrap().contains("private"));
        assert!(refused("fd00::1").unwrap().contains("--registry-allow"));
        // Where the operator runs registries, and the internet.
        assert_eq!(refused("10.96.5.20"), None);
        assert_eq!(refused("93.184.216.34"), None);
    }
}
