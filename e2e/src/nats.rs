//! A real `nats-server` with JetStream on loopback (or a bridge) (built by `scripts/ensure-tools.sh`), which
//! can be stopped and started again on the same port and storage, and its own client, `nats`.

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::{Process, free_port, wait_until};
use crate::registry::tool;

pub struct NatsServer {
    /// The address it listens on: loopback, or a bridge's for Pods to reach.
    pub host: String,
    pub port: u16,
    process: Option<Process>,
    dir: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> Self {
        Self::on_port(free_port())
    }

    /// A server on `port` (one a test handed out before the server existed).
    pub fn on_port(port: u16) -> Self {
        Self::on("127.0.0.1", port)
    }

    /// A server listening on `host:port`.
    pub fn on(host: &str, port: u16) -> Self {
        let mut server = Self {
            host: host.to_string(),
            port,
            process: None,
            dir: tempfile::tempdir().unwrap(),
        };
        server.restart();
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    /// Starts the server (again) on its port, keeping its JetStream storage.
    pub fn restart(&mut self) {
        self.stop();
        let mut serve = Command::new(tool("nats-server"));
        serve
            .args(["-a", &self.host, "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.dir.path().join("jetstream"));
        let log = self.dir.path().join(format!("nats-{}.log", free_port()));
        self.process = Some(Process::spawn(serve, &log));
        let addr = format!("{}:{}", self.host, self.port);
        wait_until("nats-server to greet", Duration::from_secs(20), || {
            greets(&addr)
        });
    }

    pub fn stop(&mut self) {
        self.process = None;
    }

    /// A `nats` command (the server's own client) pointed at this server.
    pub fn client(&self) -> Command {
        let mut cmd = Command::new(tool("nats"));
        cmd.args(["--server", &self.url()])
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1");
        cmd
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Whether a NATS server at `addr` sends its `INFO` greeting.
fn greets(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut greeting = [0u8; 4];
    stream.read_exact(&mut greeting).is_ok() && &greeting == b"INFO"
}
