//! A real containerd (Debian's, with runc) as a process of its own: its state, socket and CNI
//! configuration in a temporary directory, plain-HTTP access to the test registry, and the
//! settings these machines need (`restrict_oom_score_adj`: a negative OOM score is refused
//! here, see ../shared/RECIPES.md). `ctr` drives it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{Process, wait_until};

pub struct Containerd {
    pub socket: PathBuf,
    process: Process,
    dir: tempfile::TempDir,
}

/// The containerd namespace the tests use (the kubelet's is `k8s.io`).
pub const NAMESPACE: &str = "weft-e2e";

impl Containerd {
    /// containerd trusting `registry` (`127.0.0.1:<port>`) over plain HTTP, with `sandbox_image`
    /// as the Pods' sandbox.
    pub fn start(registry: &str, sandbox_image: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("ctrd").tempdir().unwrap();
        let socket = dir.path().join("containerd.sock");
        let cni = dir.path().join("cni");
        std::fs::create_dir_all(&cni).unwrap();
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry}"]
    endpoint = ["http://{registry}"]
"#,
            root = dir.path().join("root").display(),
            state = dir.path().join("state").display(),
            socket = socket.display(),
            cni = cni.display(),
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&config_path);
        let process = Process::spawn(cmd, &dir.path().join("containerd.log"));
        let this = Self {
            socket,
            process,
            dir,
        };
        wait_until("containerd to answer", Duration::from_secs(30), || {
            this.ctr()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        this
    }

    /// A `ctr` command talking to this containerd, in the tests' namespace.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.socket)
            .args(["--namespace", NAMESPACE]);
        cmd
    }

    /// Runs `ctr` with `args`, panicking with its output when it fails.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ctr {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ctr` in the kubelet's namespace.
    fn ctr_k8s(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "k8s.io"]);
        cmd
    }

    fn k8s_containers(&self) -> Vec<String> {
        self.ctr_k8s()
            .args(["containers", "ls", "-q"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the kubelet's Pods are all gone (their containers removed).
    pub fn pods_gone(&self) -> bool {
        self.k8s_containers().is_empty()
    }

    /// Kills and removes whatever the kubelet left running.
    pub fn remove_all(&self) {
        for id in self.k8s_containers() {
            let _ = self
                .ctr_k8s()
                .args(["tasks", "kill", "--signal", "SIGKILL", &id])
                .output();
            let _ = self
                .ctr_k8s()
                .args(["tasks", "rm", "--force", &id])
                .output();
            let _ = self.ctr_k8s().args(["containers", "rm", &id]).output();
        }
    }

    /// Where the CRI plugin reads CNI network configurations.
    pub fn cni_dir(&self) -> PathBuf {
        self.dir.path().join("cni")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }
}
