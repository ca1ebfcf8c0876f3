//! A real single-node Kubernetes cluster without Docker: the control plane of
//! [`ControlPlane`] plus kube-controller-manager, kube-scheduler and a kubelet running Pods
//! under containerd and runc, on a bridge network the harness makes (`weft0`,
//! 198.18.0.0/24; the API server on 198.19.0.1:443, the address of the `kubernetes` Service, so
//! Pods reach it without kube-proxy), and an OCI registry on the bridge that both containerd
//! (images) and the host-agents in Pods (components) pull from. Settings from
//! ../shared/RECIPES.md ("A real node").
//!
//! The addresses are fixed, so one node runs on a machine at a time; a lock file says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::containerd::Containerd;
use crate::control_plane::{ApiAddress, ControlPlane};
use crate::process::{Process, free_port, wait_until, workspace_root};
use crate::registry::{Registry, tool};

/// The bridge Pods are attached to, its address and subnet.
pub const BRIDGE: &str = "weft0";
pub const GATEWAY: &str = "198.18.0.1";
const SUBNET: &str = "198.18.0.0/24";
/// The `kubernetes` Service's ClusterIP, held by the bridge so it is an address of this machine.
pub const API_HOST: &str = "198.19.0.1";
const SERVICE_RANGE: &str = "198.19.0.0/24";
const NODE_NAME: &str = "weft-node";

pub struct Node {
    pub control_plane: ControlPlane,
    pub registry: Registry,
    pub containerd: Containerd,
    controllers: Vec<Process>,
    kubelet: Option<Process>,
    kubelet_dir: PathBuf,
    /// Network namespaces that existed before the node: the others are its Pods'.
    netns_before: Vec<String>,
    _lock: std::fs::File,
}

impl Node {
    /// Brings the node up and waits until it is Ready; images are pushed to `registry` by the
    /// caller (see [`Node::push_images`]).
    pub fn start() -> Self {
        let lock = lock();
        crate::leftovers::clean();
        let netns_before = netns();
        network_up();
        let registry = Registry::start_on(&format!("{GATEWAY}:{}", free_port()));
        let sandbox = format!("{}/weft/pause:1", registry.addr);
        push_pause(&registry, &sandbox);
        let control_plane = ControlPlane::start_on(ApiAddress {
            host: API_HOST.into(),
            port: 443,
            service_range: SERVICE_RANGE.into(),
            service_accounts: true,
        });
        let containerd = Containerd::start(&registry.addr, &sandbox);
        crate::leftovers::Record {
            dirs: vec![control_plane.dir().into(), containerd.dir().into()],
            netns_before: netns_before.clone(),
        }
        .save();
        write_cni_config(&containerd.cni_dir());
        let dir = control_plane.dir().to_path_buf();
        let kubeconfig = control_plane.kubeconfig.clone();
        let mut scheduler = Command::new(tool("kube-scheduler"));
        scheduler
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args([
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
            ]);
        let controllers = vec![
            control_plane.start_controller_manager("*", &[]),
            Process::spawn(scheduler, &dir.join("kube-scheduler.log")),
        ];
        let kubelet_dir = dir.join("kubelet");
        let mut node = Self {
            control_plane,
            registry,
            containerd,
            controllers,
            kubelet: None,
            kubelet_dir,
            netns_before,
            _lock: lock,
        };
        node.start_kubelet();
        wait_until(
            "the kubelet to register its Node",
            Duration::from_secs(60),
            || {
                node.control_plane
                    .kubectl()
                    .args(["get", "node", NODE_NAME])
                    .output()
                    .is_ok_and(|o| o.status.success())
            },
        );
        node.control_plane.kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("node/{NODE_NAME}"),
            "--timeout=120s",
        ]);
        // Pods need their namespace's default ServiceAccount, made by the controller-manager.
        wait_until(
            "the default ServiceAccount",
            Duration::from_secs(60),
            || {
                node.control_plane
                    .kubectl()
                    .args(["get", "serviceaccount", "default", "-n", "weft-system"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            },
        );
        node
    }

    fn start_kubelet(&mut self) {
        let dir = self.control_plane.dir().to_path_buf();
        let config = dir.join("kubelet.yaml");
        std::fs::write(
            &config,
            format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
evictionHard: {{memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}}
resolvConf: \"\"
containerRuntimeEndpoint: unix://{}
authentication: {{anonymous: {{enabled: false}}, webhook: {{enabled: false}}}}
authorization: {{mode: AlwaysAllow}}
port: {}
readOnlyPort: 0
healthzPort: 0
",
                self.containerd.socket.display(),
                free_port()
            ),
        )
        .unwrap();
        let mut kubelet = Command::new(tool("kubelet"));
        kubelet
            .arg(format!(
                "--kubeconfig={}",
                self.control_plane.kubeconfig.display()
            ))
            .arg(format!("--config={}", config.display()))
            .arg(format!("--root-dir={}", self.kubelet_dir.display()))
            .arg(format!("--hostname-override={NODE_NAME}"))
            .arg(format!("--node-ip={GATEWAY}"));
        self.kubelet = Some(Process::spawn(kubelet, &dir.join("kubelet.log")));
    }

    /// Builds the operator and host-agent images (`scripts/build-images.sh`) with `tag` from the
    /// debug binaries the tests run (a release build would compile Wasmtime a second time) and
    /// pushes them to the node's registry; returns `<registry>/weft`.
    pub fn push_images(&self, tag: &str) -> String {
        let mut build = Command::new(workspace_root().join("scripts/build-images.sh"));
        crate::process::without_test_env(&mut build);
        let out = build
            .args(["--push", &self.registry.addr])
            .env("TAG", tag)
            .env("PROFILE", "dev")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "build-images.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{}/weft", self.registry.addr)
    }

    /// `helm install weft` from the chart with the node's images and `values`, waiting for
    /// every Pod to be Ready; returns how long that took.
    pub fn helm_install(&self, tag: &str, values: &[&str]) -> Duration {
        let images = format!("{}/weft", self.registry.addr);
        let started = Instant::now();
        let mut helm = self.control_plane.helm();
        helm.args(["install", "weft"])
            .arg(workspace_root().join("charts/weft"))
            .args(["--namespace", "weft-system", "--create-namespace"])
            .args([
                "--set",
                &format!("operator.image.repository={images}/operator"),
            ])
            .args(["--set", &format!("operator.image.tag={tag}")])
            .args([
                "--set",
                &format!("hostAgent.image.repository={images}/host-agent"),
            ])
            .args(["--set", &format!("hostAgent.image.tag={tag}")])
            .args([
                "--set",
                &format!("hostAgent.insecureRegistries={{{}}}", self.registry.addr),
            ])
            // The registry is on the node's bridge: a private address, refused unless allowed.
            .args([
                "--set",
                &format!("hostAgent.registryAllow={{{GATEWAY}/32}}"),
            ])
            // The examples answer `<name>.localhost`, in namespace default.
            .args(["--set", "operator.hostnames.default={localhost}"]);
        for value in values {
            helm.args(["--set", value]);
        }
        let out = helm.output().unwrap();
        assert!(
            out.status.success(),
            "helm install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_pods_ready(Duration::from_secs(180));
        started.elapsed()
    }

    /// `helm upgrade weft` with the release's values plus `values`, waiting for the rollout;
    /// returned unstarted, so a test may watch while it runs.
    pub fn helm_upgrade(&self, values: &[&str]) -> Command {
        let mut helm = self.control_plane.helm();
        helm.args(["upgrade", "weft"])
            .arg(workspace_root().join("charts/weft"))
            .args([
                "-n",
                "weft-system",
                "--reuse-values",
                "--wait",
                "--timeout=180s",
            ]);
        for value in values {
            helm.args(["--set", value]);
        }
        helm
    }

    /// Waits until every Pod of weft-system is Running and Ready.
    pub fn wait_pods_ready(&self, timeout: Duration) {
        wait_until("weft-system Pods Ready", timeout, || {
            let out = self
                .control_plane
                .kubectl()
                .args(["get", "pods", "-n", "weft-system", "-o"])
                .arg("jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {end}")
                .output()
                .unwrap();
            let pods = String::from_utf8_lossy(&out.stdout).to_string();
            !pods.trim().is_empty() && pods.split_whitespace().all(|p| p.ends_with("=True"))
        });
    }

    pub fn logs(&self) -> String {
        let mut logs = self.control_plane.logs();
        for name in [
            "kubelet.log",
            "kube-controller-manager.log",
            "kube-scheduler.log",
        ] {
            let text =
                std::fs::read_to_string(self.control_plane.dir().join(name)).unwrap_or_default();
            logs.push_str(&format!(
                "--- {name}\n{}\n",
                crate::control_plane::tail(&text)
            ));
        }
        logs.push_str(&format!(
            "--- containerd\n{}\n",
            crate::control_plane::tail(&self.containerd.logs())
        ));
        // Where things stand, and what Weft's own Pods said (read from the kubelet's log files:
        // the API server holds no client certificate the kubelet would accept).
        let out =
            self.control_plane
                .kubectl_output(&["get", "pods,hosts,wl,leases", "-A", "-o", "wide"]);
        logs.push_str(&format!(
            "--- kubectl get pods,hosts,wl,leases\n{}{}\n",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        let pods = std::fs::read_dir(POD_LOGS).into_iter().flatten().flatten();
        for pod in pods.filter(|p| p.file_name().to_string_lossy().starts_with("weft-system_")) {
            for file in walkdir(&pod.path()) {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                logs.push_str(&format!(
                    "--- {}\n{}\n",
                    file.display(),
                    crate::control_plane::tail(&text)
                ));
            }
        }
        logs
    }
}

/// Where the kubelet writes container logs (its default `podLogsDir`).
const POD_LOGS: &str = "/var/log/pods";

/// The files under `dir`, recursively.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walkdir(&path));
        } else {
            files.push(path);
        }
    }
    files
}

impl Drop for Node {
    fn drop(&mut self) {
        // Pods first, so the kubelet tears their sandboxes down (network namespaces, addresses).
        let _ = self
            .control_plane
            .kubectl()
            .args([
                "delete",
                "pods",
                "--all",
                "--all-namespaces",
                "--grace-period=0",
                "--force",
                "--timeout=60s",
            ])
            .output();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && !self.containerd.pods_gone() {
            std::thread::sleep(Duration::from_millis(200));
        }
        self.kubelet = None;
        self.controllers.clear();
        self.containerd.remove_all();
        unmount_under(&self.kubelet_dir);
        // Sandboxes torn down without the kubelet leave their namespaces behind.
        for ns in netns() {
            if ns.starts_with("cni-") && !self.netns_before.contains(&ns) {
                ip(&["netns", "del", &ns]);
            }
        }
        network_down();
        // Logs of Pods this node ran (only this harness's kubelet writes there: one node per
        // machine), so the next run's failure output shows its own.
        for entry in std::fs::read_dir(POD_LOGS).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
        crate::leftovers::forget();
    }
}

/// One node per machine: its addresses are fixed.
fn lock() -> std::fs::File {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::File::create(std::env::temp_dir().join("weft-node.lock")).unwrap();
    // SAFETY: flock on a descriptor we own; released when the file closes.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "locking weft-node.lock");
    file
}

pub(crate) fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn netns() -> Vec<String> {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn network_up() {
    network_down();
    assert!(
        ip(&["link", "add", BRIDGE, "type", "bridge"]),
        "ip link add {BRIDGE} type bridge (needs root)"
    );
    assert!(ip(&[
        "addr",
        "add",
        &format!("{GATEWAY}/24"),
        "dev",
        BRIDGE
    ]));
    assert!(ip(&[
        "addr",
        "add",
        &format!("{API_HOST}/32"),
        "dev",
        BRIDGE
    ]));
    assert!(ip(&["link", "set", BRIDGE, "up"]));
    // Addresses host-local handed out to an earlier node.
    let _ = std::fs::remove_dir_all("/var/lib/cni/networks/weft");
}

fn network_down() {
    if ip(&["link", "show", BRIDGE]) {
        ip(&["link", "del", BRIDGE]);
    }
}

fn write_cni_config(dir: &Path) {
    std::fs::write(
        dir.join("10-weft.conflist"),
        format!(
            r#"{{"cniVersion": "1.0.0", "name": "weft", "plugins": [
  {{"type": "bridge", "bridge": "{BRIDGE}", "isGateway": true, "hairpinMode": true,
   "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "{SUBNET}", "gateway": "{GATEWAY}"}}]],
             "routes": [{{"dst": "0.0.0.0/0"}}]}}}},
  {{"type": "portmap", "capabilities": {{"portMappings": true}}}}]}}"#
        ),
    )
    .unwrap();
}

/// Builds the static sandbox program (`e2e/pause/pause.c`) into an image and pushes it.
fn push_pause(registry: &Registry, reference: &str) {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("pause");
    let built = Command::new("gcc")
        .args(["-static", "-Os", "-o"])
        .arg(&binary)
        .arg(workspace_root().join("e2e/pause/pause.c"))
        .status()
        .expect("gcc (scripts/ensure-packages.sh installs it)");
    assert!(built.success(), "gcc -static pause.c");
    let layout = dir.path().join("layout");
    let xtask = crate::process::workspace_bin("xtask");
    let out = Command::new(&xtask)
        .arg("oci-image")
        .arg(&binary)
        .arg("1")
        .arg(&layout)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", xtask.display()));
    assert!(
        out.status.success(),
        "xtask oci-image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed = Command::new(tool("oras"))
        .arg("cp")
        .arg("--from-oci-layout")
        .arg(format!("{}:1", layout.display()))
        .arg(reference)
        .arg("--to-plain-http")
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "oras cp: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let _ = registry;
}

/// Unmounts what the kubelet mounted under `dir` (volumes), deepest first.
pub(crate) fn unmount_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").arg("-l").arg(point).status();
    }
}
