//! A real Kubernetes control plane without containers: etcd and kube-apiserver as processes on
//! loopback, RBAC on, an admin token in `system:masters`, and a kubeconfig for kubectl and the
//! Weft binaries. No controller-manager, scheduler or kubelet: Weft needs none of them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::process::{Process, free_port, wait_until, workspace_root};
use crate::registry::tool;

pub struct ControlPlane {
    dir: tempfile::TempDir,
    etcd: Process,
    apiserver: Option<Process>,
    api: ApiAddress,
    etcd_port: u16,
    pub kubeconfig: PathBuf,
}

/// Where the API server listens, and what a cluster with Pods needs of it.
#[derive(Clone, Debug)]
pub struct ApiAddress {
    /// The address it listens on and advertises (in its serving certificate too).
    pub host: String,
    pub port: u16,
    pub service_range: String,
    /// The ServiceAccount admission plugin, which gives Pods their tokens (needs a
    /// controller-manager to make the ServiceAccounts).
    pub service_accounts: bool,
}

impl ApiAddress {
    /// Loopback on a free port, for a cluster without Pods.
    pub fn loopback() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: free_port(),
            service_range: "198.19.255.0/24".into(),
            service_accounts: false,
        }
    }
}

const ADMIN_TOKEN_USER: &str = "weft-admin";

impl ControlPlane {
    /// Starts etcd and kube-apiserver, waits until the API server is ready, and applies the
    /// CRDs from `crds/` (waiting until they are established) and the `weft-system` namespace.
    pub fn start() -> Self {
        Self::start_on(ApiAddress::loopback())
    }

    /// Like [`ControlPlane::start`], the API server at `api`.
    pub fn start_on(api: ApiAddress) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("weft-cp-")
            .tempdir()
            .unwrap();
        let (etcd_port, peer_port) = (free_port(), free_port());
        let mut etcd = Command::new(tool("etcd"));
        etcd.args([
            "--name=weft",
            "--unsafe-no-fsync",
            &format!("--data-dir={}", dir.path().join("etcd").display()),
            &format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
            &format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
            &format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            &format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            &format!("--initial-cluster=weft=http://127.0.0.1:{peer_port}"),
            "--log-level=warn",
        ]);
        let etcd = Process::spawn(etcd, &dir.path().join("etcd.log"));

        // The service-account signing key, and the admin's bearer token.
        let key = dir.path().join("sa.key");
        let status = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success(), "openssl genrsa");
        let token = format!("{:032x}", rand_u128());
        std::fs::write(
            dir.path().join("tokens.csv"),
            format!("{token},{ADMIN_TOKEN_USER},{ADMIN_TOKEN_USER},\"system:masters\"\n"),
        )
        .unwrap();

        let kubeconfig = dir.path().join("kubeconfig");
        let cert_dir = dir.path().join("certs");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: weft\n  cluster:\n    server: https://{}:{}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: weft\n  context:\n    cluster: weft\n    user: admin\n    namespace: default\ncurrent-context: weft\n",
                api.host,
                api.port,
                cert_dir.join("apiserver.crt").display()
            ),
        )
        .unwrap();

        let mut plane = Self {
            dir,
            etcd,
            apiserver: None,
            api,
            etcd_port,
            kubeconfig,
        };
        plane.start_apiserver();
        plane.install();
        plane
    }

    /// kube-controller-manager against this control plane, running `controllers` (its
    /// `--controllers` flag: `*` for all). `extra` arguments tune them.
    pub fn start_controller_manager(&self, controllers: &str, extra: &[&str]) -> Process {
        let dir = self.dir.path();
        let mut cmd = Command::new(tool("kube-controller-manager"));
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!(
                "--root-ca-file={}",
                dir.join("certs/apiserver.crt").display()
            ))
            .arg(format!(
                "--service-account-private-key-file={}",
                dir.join("sa.key").display()
            ))
            .arg(format!("--controllers={controllers}"))
            .args([
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
            ])
            .args(extra);
        Process::spawn(cmd, &dir.join("kube-controller-manager.log"))
    }

    fn start_apiserver(&mut self) {
        let dir = self.dir.path();
        let mut cmd = Command::new(tool("kube-apiserver"));
        cmd.args([
            &format!("--etcd-servers=http://127.0.0.1:{}", self.etcd_port),
            &format!("--secure-port={}", self.api.port),
            &format!("--bind-address={}", self.api.host),
            &format!("--advertise-address={}", self.api.host),
            &format!("--cert-dir={}", dir.join("certs").display()),
            &format!("--service-cluster-ip-range={}", self.api.service_range),
            "--authorization-mode=RBAC",
            &format!("--token-auth-file={}", dir.join("tokens.csv").display()),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            &format!(
                "--service-account-key-file={}",
                dir.join("sa.key").display()
            ),
            &format!(
                "--service-account-signing-key-file={}",
                dir.join("sa.key").display()
            ),
            &format!(
                "--{}-admission-plugins=ServiceAccount",
                if self.api.service_accounts {
                    "enable"
                } else {
                    "disable"
                }
            ),
            "--enable-priority-and-fairness=false",
            // The node's name resolves nowhere; `kubectl logs` reaches the kubelet by its IP.
            "--kubelet-preferred-address-types=InternalIP",
            "--v=0",
        ]);
        self.apiserver = Some(Process::spawn(cmd, &dir.join("kube-apiserver.log")));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let log = self.dir.path().join("kube-apiserver.log");
        wait_until("kube-apiserver /readyz", Duration::from_secs(120), || {
            self.kubectl()
                .args(["get", "--raw", "/readyz"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        assert!(log.exists());
    }

    /// Kills the API server and starts it again on the same port and etcd.
    pub fn restart_apiserver(&mut self) {
        self.restart_apiserver_after(Duration::ZERO);
    }

    /// Kills the API server and starts it again once it has been away for `outage`.
    pub fn restart_apiserver_after(&mut self, outage: Duration) {
        let killed = std::time::Instant::now();
        if let Some(mut old) = self.apiserver.take() {
            old.signal("KILL");
            old.wait_exit(Duration::from_secs(10));
        }
        // The outage is the scenario under test, not a wait for something to happen.
        std::thread::sleep(outage.saturating_sub(killed.elapsed()));
        self.start_apiserver();
    }

    fn install(&self) {
        let crds = workspace_root().join("crds");
        self.kubectl_ok(&["apply", "-f", crds.to_str().unwrap()]);
        // `kubectl wait` fails at once while a new CRD has no conditions yet; ask again.
        wait_until(
            "the CRDs to be established",
            Duration::from_secs(60),
            || {
                self.kubectl()
                    .args([
                        "wait",
                        "--for=condition=Established",
                        "--timeout=10s",
                        "crd/workloads.weft.dev",
                        "crd/hosts.weft.dev",
                    ])
                    .output()
                    .is_ok_and(|o| o.status.success())
            },
        );
        self.kubectl_ok(&["create", "namespace", "weft-system"]);
    }

    /// `kubectl --kubeconfig <this plane>`.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(tool("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// Runs kubectl, panicking with its stderr unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl_output(args);
        assert!(
            output.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn kubectl_output(&self, args: &[&str]) -> Output {
        self.kubectl()
            .args(args)
            .output()
            .expect("kubectl is installed")
    }

    /// `kubectl apply -f -` with `yaml` on stdin.
    pub fn apply(&self, yaml: &str) -> Output {
        self.kubectl_stdin(&["apply", "-f", "-"], yaml)
    }

    /// kubectl with `args`, and `input` on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// A JSON field of an object, through `kubectl get -o jsonpath`; empty when absent.
    pub fn jsonpath(&self, object: &[&str], path: &str) -> String {
        let mut args = vec!["get"];
        args.extend_from_slice(object);
        let expr = format!("-o=jsonpath={path}");
        args.push(&expr);
        let output = self.kubectl_output(&args);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A kubeconfig for the same cluster that authenticates with `token` (a ServiceAccount's,
    /// from `kubectl create token`), so a process runs with exactly that account's RBAC.
    pub fn kubeconfig_with_token(&self, name: &str, token: &str) -> PathBuf {
        let admin = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let start = admin.find("    token: ").unwrap();
        let end = start + admin[start..].find('\n').unwrap();
        let path = self.dir.path().join(format!("kubeconfig-{name}"));
        std::fs::write(
            &path,
            format!("{}    token: {token}{}", &admin[..start], &admin[end..]),
        )
        .unwrap();
        path
    }

    /// `helm --kubeconfig <this plane>`.
    pub fn helm(&self) -> Command {
        let mut cmd = Command::new(tool("helm"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// Where the API server listens.
    pub fn api_socket(&self) -> std::net::SocketAddr {
        format!("{}:{}", self.api.host, self.api.port)
            .parse()
            .unwrap()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn logs(&self) -> String {
        format!(
            "--- etcd\n{}\n--- kube-apiserver\n{}",
            tail(&self.etcd.logs()),
            tail(
                &self
                    .apiserver
                    .as_ref()
                    .map(|a| a.logs())
                    .unwrap_or_default()
            )
        )
    }
}

/// The last 40 lines of a log.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Randomness for a token, without a dependency: the OS's.
fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    u128::from_le_bytes(bytes)
}
