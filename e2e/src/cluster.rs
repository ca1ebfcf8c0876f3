//! A whole Weft installation on one machine: the control plane, an OCI registry, the operator
//! and host-agents as processes. Each host-agent listens on its own loopback address
//! (127.0.0.1x) and registers a distinct address from the benchmarking range (198.18.255.1x) as
//! its Host's `spec.address`: the API server refuses loopback addresses in EndpointSlices, and
//! the tests only need to tell the hosts apart there (nothing connects to them; the real-node
//! suite, `tests/node.rs`, uses Pod IPs).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::control_plane::{ControlPlane, tail};
use crate::process::{Process, free_port, workspace_bin};
use crate::registry::Registry;

pub struct Agent {
    pub name: String,
    /// The address it registers (`Host.spec.address`, what EndpointSlices list).
    pub address: String,
    /// The loopback address it listens on.
    pub listen: String,
    pub http_port: u16,
    pub admin_port: u16,
    pub process: Process,
    /// A kubeconfig with the host-agent ServiceAccount's token bound to this agent's Pod, as
    /// the kubelet projects it: its identity for the chart's admission policies.
    pub kubeconfig: std::path::PathBuf,
    /// Its image store (and compile cache), kept when the agent is started again.
    pub image_dir: tempfile::TempDir,
}

impl Agent {
    pub fn http(&self) -> String {
        format!("{}:{}", self.listen, self.http_port)
    }

    pub fn admin(&self) -> String {
        format!("{}:{}", self.listen, self.admin_port)
    }
}

pub struct Cluster {
    pub control_plane: ControlPlane,
    /// A kubeconfig with the token of the chart's operator ServiceAccount.
    pub operator_kubeconfig: std::path::PathBuf,
    pub registry: Registry,
    /// The NATS server every host-agent offers (`--nats-url`) for keyvalue, blobstore and
    /// messaging.
    pub nats: crate::NatsServer,
    /// The Redis server every host-agent offers (`--redis-url`) for keyvalue.
    pub redis: crate::RedisServer,
    pub operator: Option<Process>,
    /// The operator's `/metrics` address.
    pub operator_metrics: String,
    /// Variables every operator started from now on gets (e.g. `OTEL_*`).
    pub operator_env: Vec<(String, String)>,
    pub agents: BTreeMap<String, Agent>,
    /// How long a host-agent's Lease holds without renewal.
    pub lease_duration: Duration,
    /// kube-controller-manager with only the garbage collector (a deleted WorkloadDeployment's
    /// replicas go with it) and the HorizontalPodAutoscaler controller.
    pub controller_manager: Process,
    /// The HTTP port every host-agent listens on (each on its own address), as in a real
    /// installation: an EndpointSlice lists one port for all its hosts.
    pub http_port: u16,
}

impl Cluster {
    /// The control plane with the Helm chart installed, a registry, the operator and `agents`
    /// host-agents named `host-a`, `host-b`, … all Ready. The operator and host-agents run as
    /// the chart's ServiceAccounts, so the API server checks every call against the chart's
    /// RBAC.
    pub fn start(agents: usize) -> Self {
        let control_plane = ControlPlane::start();
        let chart = crate::process::workspace_root().join("charts/weft");
        let installed = control_plane
            .helm()
            .args(["install", "weft"])
            .arg(&chart)
            .args(["--namespace", "weft-system"])
            // No node runs Pods here, so the uninstall Job could never run (tests/node.rs
            // covers it on a real node).
            .args(["--set", "operator.uninstallHook.enabled=false"])
            // Workloads in `default` may take values from its ConfigMaps and Secrets.
            .args(["--set", "hostAgent.secrets.namespaces={default}"])
            .output()
            .unwrap();
        assert!(
            installed.status.success(),
            "helm install: {}",
            String::from_utf8_lossy(&installed.stderr)
        );
        let token = control_plane.kubectl_ok(&[
            "create",
            "token",
            "weft-operator",
            "-n",
            "weft-system",
            "--duration=24h",
        ]);
        let operator_kubeconfig = control_plane.kubeconfig_with_token("operator", token.trim());
        let controller_manager = control_plane.start_controller_manager(
            "garbagecollector,horizontalpodautoscaling",
            &["--horizontal-pod-autoscaler-sync-period=1s"],
        );
        let mut cluster = Self {
            controller_manager,
            http_port: free_port(),
            control_plane,
            operator_kubeconfig,
            registry: Registry::start(),
            nats: crate::NatsServer::start(),
            redis: crate::RedisServer::start(),
            operator: None,
            operator_metrics: String::new(),
            operator_env: Vec::new(),
            agents: BTreeMap::new(),
            lease_duration: Duration::from_secs(6),
        };
        cluster.start_operator();
        for i in 0..agents {
            let name = format!("host-{}", (b'a' + i as u8) as char);
            cluster.start_agent(&name);
        }
        cluster
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        self.control_plane.kubectl_ok(args)
    }

    pub fn start_operator(&mut self) {
        let (process, metrics) = self.spawn_operator();
        self.operator = Some(process);
        self.operator_metrics = metrics;
    }

    /// Another operator replica, e.g. a standby for leader election; returns it and its
    /// metrics address.
    pub fn spawn_operator(&self) -> (Process, String) {
        let metrics = free_port();
        let mut cmd = Command::new(workspace_bin("operator"));
        // The examples answer `<name>.localhost`; the tests contend for such names from team-b.
        cmd.args(["run", "--namespace", "weft-system"])
            .args([
                "--hostname-grant=default=localhost",
                "--hostname-grant=team-b=localhost",
            ])
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics}"))
            .env("KUBECONFIG", &self.operator_kubeconfig)
            .env("RUST_LOG", "info")
            .envs(self.operator_env.iter().map(|(k, v)| (k, v)));
        let log = self
            .control_plane
            .dir()
            .join(format!("operator-{metrics}.log"));
        (Process::spawn(cmd, &log), format!("127.0.0.1:{metrics}"))
    }

    /// Starts (or restarts, keeping its image store) the host-agent `name` and waits until
    /// its Host is Ready.
    pub fn start_agent(&mut self, name: &str) {
        self.start_agent_in_pod(name, None);
    }

    /// Like [`Cluster::start_agent`], telling the agent it runs in Pod `pod` of `weft-system`
    /// (as the downward API would), so its Host names that Pod.
    pub fn start_agent_in_pod(&mut self, name: &str, pod: Option<&str>) {
        self.start_agent_with(name, pod, &[]);
    }

    /// Like [`Cluster::start_agent_in_pod`], with `extra` arguments for the agent.
    pub fn start_agent_with(&mut self, name: &str, pod: Option<&str>, extra: &[&str]) {
        self.spawn_agent(name, pod, extra, None);
    }

    /// Like [`Cluster::start_agent`], the agent reaching the API server only through
    /// `partition`.
    pub fn start_agent_through(&mut self, name: &str, partition: &crate::partition::Partition) {
        self.spawn_agent(name, None, &[], Some(partition.addr()));
    }

    fn spawn_agent(
        &mut self,
        name: &str,
        pod: Option<&str>,
        extra: &[&str],
        through: Option<std::net::SocketAddr>,
    ) {
        let index = name.bytes().last().unwrap_or(b'a') - b'a';
        let address = format!("198.18.255.{}", 11 + index);
        let listen = format!("127.0.0.{}", 11 + index);
        let (http_port, admin_port) = (self.http_port, free_port());
        let image_dir = match self.agents.remove(name) {
            Some(old) => old.image_dir,
            None => tempfile::tempdir().unwrap(),
        };
        let kubeconfig = self.pod_bound_kubeconfig(name);
        if let Some(proxy) = through {
            let api = self.control_plane.api_socket();
            let text = std::fs::read_to_string(&kubeconfig).unwrap();
            let text = text.replace(
                &format!("server: https://{api}"),
                &format!("server: https://{proxy}"),
            );
            assert!(text.contains(&proxy.to_string()), "{text}");
            std::fs::write(&kubeconfig, text).unwrap();
        }
        let mut cmd = Command::new(workspace_bin("host-agent"));
        cmd.args(["agent", "--host-name", name, "--namespace", "weft-system"])
            // The test registry is on loopback, which pulls are refused unless allowed.
            .args(["--registry-allow", "127.0.0.0/8"])
            .arg("--address")
            .arg(&address)
            .arg("--listen")
            .arg(format!("{listen}:{http_port}"))
            .arg("--admin-listen")
            .arg(format!("{listen}:{admin_port}"))
            .arg("--lease-duration")
            .arg(format!("{}s", self.lease_duration.as_secs()))
            .arg("--image-dir")
            .arg(image_dir.path())
            .arg("--cache-dir")
            .arg(image_dir.path().join("compiled"))
            .arg("--registry-config")
            .arg(image_dir.path().join("no-docker-config.json"))
            .arg("--image-pull-backoff")
            .arg("1s")
            // A rotated Secret reaches its Workload within seconds, not the default 30.
            .args(["--sources-resync", "2s"])
            .arg("--nats-url")
            .arg(self.nats.url())
            .arg("--redis-url")
            .arg(self.redis.url())
            .args(extra)
            .env("KUBECONFIG", &kubeconfig)
            // WEFT_AGENT_LOG sets the agents' RUST_LOG when debugging a test.
            .env(
                "RUST_LOG",
                std::env::var("WEFT_AGENT_LOG").unwrap_or_else(|_| "info".into()),
            );
        if let Some(pod) = pod {
            cmd.env("POD_NAME", pod).env("POD_NAMESPACE", "weft-system");
        }
        let log = self
            .control_plane
            .dir()
            .join(format!("{name}-{admin_port}.log"));
        let process = Process::spawn(cmd, &log);
        self.agents.insert(
            name.to_string(),
            Agent {
                name: name.to_string(),
                address,
                listen,
                http_port,
                admin_port,
                process,
                kubeconfig,
                image_dir,
            },
        );
        self.wait(
            &format!("Host {name} Ready"),
            Duration::from_secs(60),
            |c| c.host_ready(name),
        );
    }

    /// A kubeconfig for host-agent `name`: the host-agent ServiceAccount's token bound to a
    /// Pod of that name in `weft-system` (created if missing; nothing runs it here), so the
    /// token carries the Pod's name as a projected token in a real Pod does.
    pub fn pod_bound_kubeconfig(&self, name: &str) -> std::path::PathBuf {
        let pod = ["get", "pod", name, "-n", "weft-system"];
        if !self.control_plane.kubectl_output(&pod).status.success() {
            self.kubectl_ok(&[
                "run",
                name,
                "-n",
                "weft-system",
                "--image=weft.invalid/host-agent",
                "--restart=Never",
                r#"--overrides={"spec":{"serviceAccountName":"weft-host-agent"}}"#,
            ]);
        }
        let token = self.kubectl_ok(&[
            "create",
            "token",
            "weft-host-agent",
            "-n",
            "weft-system",
            "--bound-object-kind=Pod",
            &format!("--bound-object-name={name}"),
            "--duration=24h",
        ]);
        self.control_plane
            .kubeconfig_with_token(&format!("host-agent-{name}"), token.trim())
    }

    pub fn host_ready(&self, name: &str) -> bool {
        self.control_plane.jsonpath(
            &["host", name],
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        ) == "True"
    }

    /// A Workload's condition status (`True`, `False`, or empty).
    pub fn condition(&self, workload: &str, condition: &str) -> String {
        self.control_plane.jsonpath(
            &["workload", workload],
            &format!("{{.status.conditions[?(@.type==\"{condition}\")].status}}"),
        )
    }

    pub fn workload_host(&self, workload: &str) -> String {
        self.control_plane.jsonpath(
            &["workload", workload],
            "{.metadata.labels.weft\\.dev/host}",
        )
    }

    /// Polls `check` until it holds; on timeout, fails with every process's log tail.
    pub fn wait(&self, what: &str, timeout: Duration, check: impl Fn(&Self) -> bool) -> Duration {
        let start = std::time::Instant::now();
        loop {
            if check(self) {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lines of the operator's and host-agents' logs where the API server refused a call.
    pub fn forbidden(&self) -> Vec<String> {
        let mut logs: Vec<String> = self.agents.values().map(|a| a.process.logs()).collect();
        if let Some(op) = &self.operator {
            logs.push(op.logs());
        }
        logs.iter()
            .flat_map(|l| l.lines())
            .filter(|l| l.to_ascii_lowercase().contains("forbidden"))
            .map(String::from)
            .collect()
    }

    /// The tail of every process's log. With `WEFT_E2E_LOG_DIR` set, the operator's and each
    /// agent's whole log is also written there, for debugging.
    pub fn logs(&self) -> String {
        if let Some(dir) = std::env::var_os("WEFT_E2E_LOG_DIR") {
            let dir = std::path::PathBuf::from(dir);
            let _ = std::fs::create_dir_all(&dir);
            if let Some(op) = &self.operator {
                let _ = std::fs::write(dir.join("operator.log"), op.logs());
            }
            for agent in self.agents.values() {
                let _ = std::fs::write(
                    dir.join(format!("{}.log", agent.name)),
                    agent.process.logs(),
                );
            }
        }
        let mut out = self.control_plane.logs();
        let state =
            self.control_plane
                .kubectl_output(&["get", "hosts,wl,leases", "-A", "-o", "wide"]);
        out.push_str(&format!(
            "\n--- kubectl get hosts,wl,leases\n{}",
            String::from_utf8_lossy(&state.stdout)
        ));
        if let Some(op) = &self.operator {
            out.push_str(&format!("\n--- operator\n{}", tail(&op.logs())));
        }
        for agent in self.agents.values() {
            out.push_str(&format!(
                "\n--- {}\n{}",
                agent.name,
                tail(&agent.process.logs())
            ));
        }
        out
    }

    /// Pushes an example component (`examples/build/<name>.wasm`) to the registry as
    /// `examples/<name>:<tag>` and returns the reference.
    pub fn push_example(&self, name: &str, tag: &str) -> String {
        self.registry.push_example(name, tag)
    }
}

/// GETs `/` with one `Host` header in a loop on its own thread until stopped, counting
/// answers, failures and bodies other than the first one seen (a new version).
pub struct RequestLoop {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    changed: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl RequestLoop {
    /// Starts the loop against whatever address `target` names on each request (so it can
    /// follow a Workload from host to host).
    pub fn start(host: &str, target: impl Fn() -> String + Send + 'static) -> Self {
        let (stop, ok, changed) = <(Arc<AtomicBool>, Arc<AtomicUsize>, Arc<AtomicBool>)>::default();
        let (stop2, ok2, changed2, host) =
            (stop.clone(), ok.clone(), changed.clone(), host.to_owned());
        let thread = std::thread::spawn(move || {
            let (mut errors, mut first) = (Vec::new(), None);
            while !stop2.load(Ordering::Relaxed) {
                match http_get(&target(), &host, "/") {
                    Ok((200, body)) => {
                        ok2.fetch_add(1, Ordering::Relaxed);
                        if *first.get_or_insert_with(|| body.clone()) != body {
                            changed2.store(true, Ordering::Relaxed);
                        }
                    }
                    other => errors.push(format!("{other:?}")),
                }
            }
            errors
        });
        Self {
            stop,
            ok,
            changed,
            thread,
        }
    }

    /// Requests answered 200 so far.
    pub fn answered(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Whether a body other than the first has been served.
    pub fn saw_change(&self) -> bool {
        self.changed.load(Ordering::Relaxed)
    }

    /// Waits until `more` further requests were answered, then stops; returns how many were
    /// answered in all and the failures.
    pub fn finish(self, more: usize) -> (usize, Vec<String>) {
        let target = self.answered() + more;
        crate::process::wait_until("more answered requests", Duration::from_secs(60), || {
            self.answered() >= target || self.thread.is_finished()
        });
        self.stop.store(true, Ordering::Relaxed);
        let answered = self.answered();
        (answered, self.thread.join().unwrap())
    }
}

/// One HTTP/1.1 GET to `addr` with a `Host` header; the status code and body, or the error.
pub fn http_get(addr: &str, host: &str, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no response head")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status code")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
