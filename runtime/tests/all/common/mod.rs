//! Shared test harness: a real host with the built-in plugins, serving HTTP on an ephemeral
//! loopback port, running components built from `examples/`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weft_runtime::plugins::DefaultPlugins;
use weft_runtime::{
    ComponentSpec, EgressRules, Engine, Host, InterfaceConfig, RuntimeMetrics, WorkloadSpec,
};

/// An error with its sources, as status shows it.
pub trait ToChain {
    fn to_chain(&self) -> String;
}

impl<E: std::error::Error> ToChain for E {
    fn to_chain(&self) -> String {
        weft_runtime::error_chain(self)
    }
}

/// A component built by `make examples`.
pub fn wasm(name: &str) -> Arc<[u8]> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/build")
        .join(format!("{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build the examples: make examples)",
                path.display()
            )
        })
        .into()
}

pub fn component(name: &str, example: &str) -> ComponentSpec {
    ComponentSpec::new(name, wasm(example))
}

/// A workload answering HTTP for `<name>.test`.
pub fn http_workload(name: &str, components: Vec<ComponentSpec>) -> WorkloadSpec {
    WorkloadSpec {
        namespace: "test".into(),
        name: name.into(),
        components,
        service: None,
        host_interfaces: vec![interface(
            "wasi:http/incoming-handler@0.2.0",
            &[("host", &format!("{name}.test"))],
        )],
        volumes: Vec::new(),
        http_group: None,
    }
}

pub fn interface(name: &str, config: &[(&str, &str)]) -> InterfaceConfig {
    InterfaceConfig {
        interface: name.parse().unwrap(),
        name: None,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// How a test host differs from the defaults.
pub struct Options {
    pub engine: Option<Engine>,
    /// `--egress-allow` networks.
    pub egress_allow: Vec<ipnet::IpNet>,
    /// `--allow-host-path` prefixes [default: the temporary directory, where tests make theirs].
    pub host_path_prefixes: Vec<PathBuf>,
    pub memory_budget: Option<u64>,
    pub data_dir: Option<PathBuf>,
    /// Backends besides the in-memory ones.
    pub backends: weft_runtime::plugins::Backends,
    /// Plugins besides the default set.
    pub plugins: Vec<Arc<dyn weft_runtime::HostPlugin>>,
    pub server: weft_runtime::http_server::ServerLimits,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            engine: None,
            egress_allow: Vec::new(),
            host_path_prefixes: vec![std::env::temp_dir()],
            memory_budget: Some(64 << 30),
            data_dir: None,
            backends: Default::default(),
            plugins: Vec::new(),
            server: Default::default(),
        }
    }
}

pub struct TestHost {
    pub host: Arc<Host>,
    pub metrics: RuntimeMetrics,
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestHost {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with_engine(engine: Engine) -> Self {
        Self::with(Options {
            engine: Some(engine),
            ..Options::default()
        })
        .await
    }

    pub async fn with(options: Options) -> Self {
        let engine = options
            .engine
            .unwrap_or_else(|| Engine::builder().max_instances(100).build().unwrap());
        let egress = EgressRules::with_own_addresses(Vec::new(), options.egress_allow);
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,wasmtime=warn,cranelift=warn")
            .with_test_writer()
            .try_init();
        let metrics = RuntimeMetrics::default();
        let plugins = DefaultPlugins::new(egress, false, options.backends.clone());
        let http = plugins.http.clone();
        let mut builder = Host::builder()
            .engine(engine)
            .metrics(metrics.clone())
            .host_path_prefixes(Some(options.host_path_prefixes))
            .plugins(plugins.all.into_iter().chain(options.plugins))
            .unwrap();
        if let Some(budget) = options.memory_budget {
            builder = builder.memory_budget(budget);
        }
        if let Some(dir) = options.data_dir {
            builder = builder.data_dir(dir);
        }
        let host = Arc::new(builder.build().unwrap());
        host.start().await.unwrap();
        let listener = weft_runtime::http_server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(weft_runtime::http_server::serve(
            listener,
            http,
            options.server,
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            host,
            metrics,
            addr,
            _stop: stop,
        }
    }

    /// Starts a workload that must start.
    pub async fn run(&self, workload: WorkloadSpec) {
        self.host.start_workload(workload).await.unwrap();
    }

    pub async fn get(&self, host: &str, path: &str) -> (u16, String) {
        self.request("GET", host, path, "").await
    }

    /// One HTTP/1.1 request on a fresh connection.
    pub async fn request(&self, method: &str, host: &str, path: &str, body: &str) -> (u16, String) {
        http_request(self.addr, method, host, path, body).await
    }

    /// Waits until the metrics show `series` (a whole line's start, such as
    /// `weft_active_instances{workload="test/a",component="c"} 1`).
    pub async fn wait_for_metric(&self, series: &str) {
        eventually(series, Duration::from_secs(10), || {
            let found = self.metrics_text().contains(series);
            async move { found.then_some(()) }
        })
        .await
    }

    /// The Prometheus text of the runtime's metrics.
    pub fn metrics_text(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        self.metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }
}

pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response))
        .await
        .expect("response within 30s")
        .unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        },
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size.min(rest.len())]);
        body = rest.get(size + 2..).unwrap_or("");
    }
    out
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A real upstream on loopback, standing for the host's admin port (or anything else local).
pub async fn upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"upstream says hi")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}
