//! Child processes with their output in a log file, and waiting on conditions with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process whose stdout and stderr go to `log`; killed when dropped.
pub struct Process {
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn spawn(mut cmd: Command, log: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        // A process group of its own: a terminal's Ctrl-C signals the whole foreground group,
        // and the harness must outlive it to stop its children in order (Pods before the
        // kubelet, the kubelet before containerd).
        cmd.process_group(0);
        // SAFETY: prctl and sigprocmask are async-signal-safe and touch only the child's own
        // settings. The child dies with the harness even when the harness is killed (a test
        // timeout), so no etcd or API server outlives its test; and it gets a clear signal
        // mask, since `dev-cluster` blocks SIGINT and SIGTERM to wait for them and a blocked
        // mask survives exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                Ok(())
            });
        }
        let file = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", cmd.get_program()));
        Self {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal (`KILL`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit; returns its exit code (None if killed by a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it returns true, panicking after `timeout` with `what`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port nothing listens on right now, and never handed out before in this process:
/// the kernel may offer a port again as soon as it is closed, so two servers of tests running
/// side by side could otherwise be given one port, and the second's readiness check would
/// pass on the first's answers.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The directory holding this workspace's built binaries (`operator`, `host-agent`): the test
/// or harness binary's own directory, or its parent when it runs from `deps/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    if dir.ends_with("deps") {
        dir.parent().unwrap().to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// `cargo`, without what `cargo test` sets for the test it runs (`CARGO_PKG_*`,
/// `CARGO_MANIFEST_DIR`, `LD_LIBRARY_PATH`, ...): build scripts see those, and a build run from
/// one test package would otherwise not be fresh for the same build run from another, or from
/// a shell (minutes of Wasmtime rebuilt, each time).
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    without_test_env(&mut cmd);
    cmd
}

/// Removes from `cmd`'s environment what `cargo test` set for this test process.
pub fn without_test_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo_test = [
            "CARGO_PKG_",
            "CARGO_BIN_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
            "LD_LIBRARY_PATH",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix));
        if set_by_cargo_test {
            cmd.env_remove(name);
        }
    }
}

/// A workspace binary, built first if `cargo test` has not built it (the e2e package does not
/// depend on the binaries' packages).
pub fn workspace_bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.exists() {
        let status = cargo()
            .args(["build", "-p", name])
            .current_dir(workspace_root())
            .status()
            .unwrap();
        assert!(status.success(), "cargo build -p {name}");
    }
    path
}

/// The checkout the tests run from. `cargo test` sets `CARGO_MANIFEST_DIR` for the test process;
/// the compile-time value may name another checkout that shares the target directory.
pub fn workspace_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The body curl gets from `url`, or empty when the request fails.
pub fn curl_text(url: &str) -> String {
    Command::new("curl")
        .args(["-s", "--max-time", "5", url])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// One series' value from the `/metrics` of an admin address, or 0 when absent.
pub fn metric(admin: &str, series: &str) -> f64 {
    metric_value(&curl_text(&format!("http://{admin}/metrics")), series)
}

/// One series' value in Prometheus text, or 0 when absent.
pub fn metric_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
