//! `make dev-cluster` as a developer uses it: started in a terminal, stopped with Ctrl-C (a
//! SIGINT to the whole foreground process group), or killed outright and started again.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use weft_e2e::process::wait_until;

/// A running `dev-cluster`, in a process group of its own as a shell runs a job.
struct DevCluster {
    child: Child,
    /// Its control plane's directory (the `logs:` line).
    dir: PathBuf,
    stderr: PathBuf,
}

impl DevCluster {
    fn start(stderr: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dev-cluster"))
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap();
        let (lines, received) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut dir = None;
        loop {
            let line = received
                .recv_timeout(Duration::from_secs(600))
                .unwrap_or_else(|_| {
                    panic!(
                        "dev-cluster did not come up: {}",
                        std::fs::read_to_string(stderr).unwrap_or_default()
                    )
                });
            if let Some(path) = line.trim().strip_prefix("logs: ") {
                dir = Some(PathBuf::from(path));
            }
            if line.starts_with("Ctrl-C") {
                break;
            }
        }
        Self {
            child,
            dir: dir.expect("a logs: line"),
            stderr: stderr.to_path_buf(),
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut status = None;
        wait_until("dev-cluster to exit", Duration::from_secs(180), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }
}

/// The command lines of the processes whose command line contains `needle`.
fn processes_naming(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(needle).then_some(cmdline)
        })
        .collect()
}

fn shims() -> Vec<String> {
    processes_naming("containerd-shim-runc-v2")
}

fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|p| Path::new(p).starts_with(dir))
        })
        .map(String::from)
        .collect()
}

fn bridge_exists() -> bool {
    Command::new("ip")
        .args(["link", "show", weft_e2e::node::BRIDGE])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn pod_netns() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("cni-"))
        .map(String::from)
        .collect()
}

#[test]
fn dev_cluster_stops_cleanly_on_ctrl_c_and_cleans_up_after_a_crash() {
    let logs = tempfile::tempdir().unwrap();
    let netns_before = pod_netns();

    // A crash: SIGKILL leaves no chance to tear down. The control plane dies with it (its
    // parent-death signal); the Pods' containers and shims do not.
    let mut crashed = DevCluster::start(&logs.path().join("first.log"));
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(crashed.pid(), libc::SIGKILL) };
    crashed.wait_exit();
    // What the node recorded to clean up after itself: its control plane's and containerd's
    // directories (the shims name containerd's socket).
    let record = std::fs::read_to_string(std::env::temp_dir().join("weft-node.record")).unwrap();
    let crashed_dirs: Vec<&str> = record
        .lines()
        .filter_map(|l| l.strip_prefix("dir "))
        .collect();
    assert!(
        crashed_dirs.contains(&crashed.dir.to_str().unwrap()),
        "{record}"
    );
    let leftovers = || -> Vec<String> {
        crashed_dirs
            .iter()
            .flat_map(|dir| processes_naming(dir))
            .collect()
    };
    assert!(
        !leftovers().is_empty(),
        "a killed dev-cluster leaves its Pods' shims"
    );

    // The next start cleans up after it, then runs as usual.
    let mut cluster = DevCluster::start(&logs.path().join("second.log"));
    let stderr = std::fs::read_to_string(&cluster.stderr).unwrap();
    assert!(
        stderr.contains("cleaning up after a node whose teardown did not finish"),
        "{stderr}"
    );
    assert!(
        leftovers().is_empty(),
        "the crashed cluster's processes still run: {:?}",
        leftovers()
    );
    for dir in &crashed_dirs {
        assert!(mounts_under(Path::new(dir)).is_empty(), "{dir} has mounts");
        assert!(!Path::new(dir).exists(), "{dir} is left");
    }

    // Ctrl-C in a terminal: SIGINT to the whole process group. The harness alone gets it (its
    // children have groups of their own) and stops them in order.
    // SAFETY: a plain kill(2) of our child's process group.
    unsafe { libc::kill(-cluster.pid(), libc::SIGINT) };
    let status = cluster.wait_exit();
    let stderr = std::fs::read_to_string(&cluster.stderr).unwrap();
    assert!(
        status.success(),
        "dev-cluster exited with {status}: {stderr}"
    );
    assert!(shims().is_empty(), "shims left running: {:?}", shims());
    assert!(!bridge_exists(), "the weft0 bridge is left");
    let left: Vec<String> = pod_netns()
        .into_iter()
        .filter(|ns| !netns_before.contains(ns))
        .collect();
    assert!(left.is_empty(), "Pod network namespaces left: {left:?}");
    assert!(
        mounts_under(&cluster.dir).is_empty(),
        "{:?}",
        mounts_under(&cluster.dir)
    );
    assert!(
        !std::env::temp_dir().join("weft-node.record").exists(),
        "the node's record says its teardown did not finish"
    );
}
