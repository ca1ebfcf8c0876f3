//! Runs the real `host-agent` binary as a user would, and the real third-party tools (an OCI
//! registry, oras, curl) the tests talk to it with.
#![allow(dead_code)] // each test binary uses a different part

use weft_e2e::process::metric_value;
#[allow(unused_imports)] // only the registry tests use it
pub use weft_e2e::registry;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

pub fn example_wasm(name: &str) -> PathBuf {
    examples().join("build").join(format!("{name}.wasm"))
}

pub fn host_agent() -> Command {
    agent_command(env!("CARGO_BIN_EXE_host-agent").into())
}

fn agent_command(binary: PathBuf) -> Command {
    let mut cmd = Command::new(binary);
    cmd.env("RUST_LOG", "info");
    cmd
}

/// `host-agent run` with its caches in fresh directories unless told otherwise.
pub struct AgentBuilder {
    manifests: Vec<PathBuf>,
    args: Vec<OsString>,
    envs: Vec<(String, String)>,
    image_dir: Option<PathBuf>,
    registry_config: Option<PathBuf>,
    subcommand: &'static str,
    ready_within: Duration,
}

pub fn agent() -> AgentBuilder {
    AgentBuilder {
        subcommand: "run",
        ready_within: Duration::from_secs(30),
        manifests: Vec::new(),
        args: Vec::new(),
        envs: Vec::new(),
        image_dir: None,
        registry_config: None,
    }
}

impl AgentBuilder {
    pub fn manifest(mut self, path: impl Into<PathBuf>) -> Self {
        self.manifests.push(path.into());
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `host-agent dev` instead of `run`.
    pub fn dev(mut self) -> Self {
        self.subcommand = "dev";
        self
    }

    /// Shares an image store (and compile cache) between host-agents.
    pub fn image_dir(mut self, dir: &Path) -> Self {
        self.image_dir = Some(dir.to_path_buf());
        self
    }

    /// Registry credentials (Docker config format); by default none, whatever the user has.
    pub fn registry_config(mut self, path: &Path) -> Self {
        self.registry_config = Some(path.to_path_buf());
        self
    }

    /// `within` to be ready, for Workloads that take long to compile.
    pub fn ready_within(mut self, within: Duration) -> Self {
        self.ready_within = within;
        self
    }

    /// Runs to completion (for input it must refuse).
    pub fn output(self) -> Output {
        let dirs = tempfile::tempdir().unwrap();
        self.command(dirs.path()).output().unwrap()
    }

    fn command(&self, scratch: &Path) -> Command {
        let images = self
            .image_dir
            .clone()
            .unwrap_or_else(|| scratch.join("images"));
        let mut cmd = host_agent();
        // Key-value state and the like go to the scratch directory, not the user's home.
        cmd.env("XDG_DATA_HOME", scratch.join("data"));
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        cmd.arg(self.subcommand)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .arg("--image-dir")
            .arg(&images)
            .arg("--cache-dir")
            .arg(images.join("compiled"))
            .arg("--registry-config")
            .arg(
                self.registry_config
                    .clone()
                    .unwrap_or_else(|| scratch.join("no-docker-config.json")),
            )
            .args(&self.args)
            .args(&self.manifests);
        cmd
    }

    /// Starts the host-agent and returns once it listens; workloads may still be pulling.
    pub fn spawn(self) -> Agent {
        let scratch = tempfile::tempdir().unwrap();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = self
            .command(scratch.path())
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut agent = Agent {
            child,
            http: String::new(),
            admin: String::new(),
            log,
            stdout: lines,
            _scratch: scratch,
        };
        // "Listening on http://A  (admin: http://B)"
        let line = agent.wait_for_stdout("Listening on");
        let urls: Vec<&str> = line.split("http://").skip(1).collect();
        let clean = |s: &str| s.split([' ', ')']).next().unwrap().to_string();
        agent.http = clean(urls[0]);
        agent.admin = clean(urls[1]);
        agent
    }

    /// Starts the host-agent and waits until every workload serves.
    pub fn start(self) -> Agent {
        let within = self.ready_within;
        let agent = self.spawn();
        // Ready once every workload of every manifest was started.
        agent.wait_within("every workload serving (/readyz)", within, |a| {
            curl(&[&format!("http://{}/readyz", a.admin)]) == "ok\n"
        });
        agent
    }
}

pub struct Agent {
    pub child: Child,
    pub http: String,
    pub admin: String,
    log: tempfile::NamedTempFile,
    stdout: Arc<Mutex<Vec<String>>>,
    _scratch: tempfile::TempDir,
}

impl Agent {
    /// Everything the host-agent has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The first stdout line starting with `prefix`, or, for `dev --json`, whose `message`
    /// does.
    pub fn wait_for_stdout(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let json = format!("\"message\":\"{prefix}");
        loop {
            if let Some(line) = self
                .stdout_lines()
                .iter()
                .find(|l| l.starts_with(prefix) || l.contains(&json))
            {
                return line.clone();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("host-agent exited ({status}):\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "host-agent never printed {prefix:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str, host: Option<&str>) -> String {
        let url = format!("http://{}{path}", self.http);
        match host {
            Some(host) => curl(&["-H", &format!("Host: {host}"), &url]),
            None => curl(&[&url]),
        }
    }

    pub fn workloads(&self) -> String {
        curl(&[&format!("http://{}/workloads", self.admin)])
    }

    pub fn metrics(&self) -> String {
        curl(&[&format!("http://{}/metrics", self.admin)])
    }

    /// The value of one series in /metrics, or 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics(), series)
    }

    /// Polls `check` until it holds, failing after thirty seconds with the host-agent's log.
    pub fn wait(&self, what: &str, check: impl Fn(&Agent) -> bool) {
        self.wait_within(what, Duration::from_secs(30), check)
    }

    /// [`Agent::wait`] with another deadline.
    pub fn wait_within(&self, what: &str, within: Duration, check: impl Fn(&Agent) -> bool) {
        let deadline = Instant::now() + within;
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}\nstdout: {:?}",
                self.logs(),
                self.stdout_lines()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// Polls `check` until it holds, failing after thirty seconds.
pub fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A Workload manifest with one component per image, written into `dir`.
pub fn workload(dir: &Path, name: &str, images: &[&str], extra: &str) -> PathBuf {
    let mut text = format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\nspec:\n  components:\n"
    );
    for (i, image) in images.iter().enumerate() {
        text.push_str(&format!("    - name: c{i}\n      image: {image}\n{extra}"));
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}
