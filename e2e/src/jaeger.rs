//! A real Jaeger (`cmd/jaeger` of v1.75.0, built by `scripts/ensure-tools.sh`): takes OTLP over
//! HTTP on loopback, keeps traces in memory and answers the query API, every port its own.
//! Jaeger is an OpenTelemetry Collector inside: the log records it receives go to its `debug`
//! exporter, which writes each one, with its trace id, into [`JaegerServer::logs`].

use std::process::Command;
use std::time::Duration;

use crate::process::{Process, free_port, wait_until};
use crate::registry::tool;

pub struct JaegerServer {
    /// Where OTLP/HTTP goes: `http://127.0.0.1:<port>`.
    pub otlp: String,
    /// The query API: `http://127.0.0.1:<port>`.
    pub query: String,
    process: Process,
    _dir: tempfile::TempDir,
}

impl JaegerServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (otlp, query, query_grpc) = (free_port(), free_port(), free_port());
        let config = dir.path().join("jaeger.yaml");
        std::fs::write(
            &config,
            format!(
                "service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
    logs:
      receivers: [otlp]
      exporters: [debug]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_query:
    storage:
      traces: memory
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
  jaeger_storage:
    backends:
      memory:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  debug:
    verbosity: detailed
  jaeger_storage_exporter:
    trace_storage: memory
"
            ),
        )
        .unwrap();
        let mut command = Command::new(tool("jaeger"));
        command.arg("--config").arg(&config);
        let process = Process::spawn(command, &dir.path().join("jaeger.log"));
        let server = Self {
            otlp: format!("http://127.0.0.1:{otlp}"),
            query: format!("http://127.0.0.1:{query}"),
            process,
            _dir: dir,
        };
        wait_until("jaeger to answer queries", Duration::from_secs(30), || {
            server.get("/api/services").is_some()
        });
        server
    }

    /// What Jaeger has written so far: its own log, and each log record received.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// A query API answer, as JSON; `None` until it answers 200.
    pub fn get(&self, path: &str) -> Option<serde_json::Value> {
        let output = Command::new("curl")
            .args(["-sf", "--max-time", "5"])
            .arg(format!("{}{path}", self.query))
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        serde_json::from_slice(&output.stdout).ok()
    }

    /// The spans of trace `trace_id` (32 hex digits), once it has at least `spans` of them.
    pub fn trace(&self, trace_id: &str, spans: usize) -> Vec<serde_json::Value> {
        let mut found = Vec::new();
        wait_until(
            &format!("{spans} spans of trace {trace_id} in jaeger"),
            Duration::from_secs(30),
            || {
                found = self
                    .get(&format!("/api/traces/{trace_id}"))
                    .and_then(|t| t["data"][0]["spans"].as_array().cloned())
                    .unwrap_or_default();
                found.len() >= spans
            },
        );
        found
    }
}
