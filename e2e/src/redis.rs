//! A real `redis-server` (Debian's, installed by `scripts/ensure-packages.sh`) on loopback,
//! persisting nothing, which can be stopped and started again on the same port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::process::{Process, free_port, wait_until};

pub struct RedisServer {
    pub port: u16,
    process: Option<Process>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            process: None,
            dir: tempfile::tempdir().unwrap(),
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let mut serve = Command::new("redis-server");
        serve
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
        let log = self.dir.path().join(format!("redis-{}.log", free_port()));
        self.process = Some(Process::spawn(serve, &log));
        let port = self.port;
        wait_until(
            "redis-server to answer PING",
            Duration::from_secs(20),
            || pong(port),
        );
    }

    pub fn stop(&mut self) {
        self.process = None;
    }
}

fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
