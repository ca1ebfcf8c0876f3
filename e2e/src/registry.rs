//! A real OCI registry (CNCF distribution) on loopback, optionally behind htpasswd, and the
//! third-party tools built by `scripts/ensure-tools.sh`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub use crate::process::free_port;
use crate::process::{Process, wait_until};

/// The path of a tool `scripts/ensure-tools.sh` builds (`registry`, `oras`): from
/// `WEFT_<TOOL>` if set, else from the script itself, which builds what is missing.
pub fn tool(name: &str) -> PathBuf {
    static TOOLS: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let var = format!("WEFT_{}", name.to_uppercase().replace('-', "_"));
    if let Some(path) = std::env::var_os(&var) {
        return path.into();
    }
    let tools = TOOLS.get_or_init(|| {
        let script = crate::process::workspace_root().join("scripts/ensure-tools.sh");
        let output = Command::new(&script)
            .arg("--env")
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/ensure-tools.sh");
        assert!(output.status.success(), "ensure-tools.sh failed");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
            .collect()
    });
    tools
        .get(&var)
        .unwrap_or_else(|| panic!("ensure-tools.sh does not provide {var}"))
        .clone()
}

pub struct Registry {
    process: Process,
    /// `127.0.0.1:<port>`, the registry part of references.
    pub addr: String,
    dir: tempfile::TempDir,
}

impl Registry {
    /// An open registry.
    pub fn start() -> Self {
        Self::launch(None, &format!("127.0.0.1:{}", free_port()))
    }

    /// An open registry listening on `addr` (an address of this machine, e.g. a bridge's).
    pub fn start_on(addr: &str) -> Self {
        Self::launch(None, addr)
    }

    /// A registry that requires `user`/`password` (htpasswd, bcrypt).
    pub fn with_user(user: &str, password: &str) -> Self {
        Self::launch(
            Some((user, password)),
            &format!("127.0.0.1:{}", free_port()),
        )
    }

    fn launch(user: Option<(&str, &str)>, addr: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = addr.to_string();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = user {
            let htpasswd = dir.path().join("htpasswd");
            let status = Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(&htpasswd)
                .args([user, password])
                .stderr(Stdio::null())
                .status()
                .expect("htpasswd (apache2-utils) is installed");
            assert!(status.success());
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: weft-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut serve = Command::new(tool("registry"));
        serve.arg("serve").arg(&config_path);
        let process = Process::spawn(serve, &dir.path().join("registry.log"));
        let url = format!("http://{addr}/v2/");
        wait_until("the registry to answer", Duration::from_secs(30), || {
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "--max-time", "2", &url])
                .status()
                .is_ok_and(|s| s.success())
        });
        Self { process, addr, dir }
    }

    /// `127.0.0.1:<port>/<repository>`.
    pub fn image(&self, repository: &str) -> String {
        format!("{}/{repository}", self.addr)
    }

    /// Where the registry keeps a blob's bytes on disk (its filesystem storage layout).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Pushes `examples/build/<name>.wasm` as `<registry>/examples/<name>:<tag>` with
    /// `host-agent push`; returns the reference.
    pub fn push_example(&self, name: &str, tag: &str) -> String {
        let wasm = crate::process::workspace_root()
            .join("examples/build")
            .join(format!("{name}.wasm"));
        let reference = format!("{}:{tag}", self.image(&format!("examples/{name}")));
        let output = Command::new(crate::process::workspace_bin("host-agent"))
            .arg("push")
            .arg(&wasm)
            .arg(&reference)
            // Plain HTTP, also when it listens on a bridge rather than loopback.
            .arg("--insecure-registry")
            .arg(&self.addr)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "host-agent push: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        reference
    }

    /// Stops the registry (it is also stopped when dropped).
    pub fn stop(self) {
        drop(self.process);
    }
}

/// A Docker config file granting `user`/`password` on `registry`.
pub fn docker_config(dir: &Path, registry: &str, user: &str, password: &str) -> PathBuf {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        format!(r#"{{"auths": {{"{registry}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    path
}
