//! `host-agent run` as a user runs it: the real binary, real manifests from `examples/`, curl as
//! the client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn host_agent() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-agent"));
    cmd.env("RUST_LOG", "info");
    cmd
}

/// Runs `host-agent run` on a manifest expected to be refused.
fn refused(manifest: &Path) -> Output {
    let cache = tempfile::tempdir().unwrap();
    let output = host_agent()
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--cache-dir",
        ])
        .arg(cache.path())
        .arg(manifest)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The error `host-agent run` gives for manifest text it must refuse.
fn refusal(dir: &tempfile::TempDir, text: &str) -> String {
    stderr(&refused(&manifest(dir, text)))
}

/// Writes a manifest next to the examples (so `build/...` image paths resolve).
fn manifest(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("workload.yaml");
    std::fs::write(
        &path,
        text.replace("build/", &format!("{}/build/", examples().display())),
    )
    .unwrap();
    path
}

const HELLO: &str = "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: hello
spec:
  components:
    - name: hello
      image: build/hello-http.wasm
";

struct Running {
    child: Child,
    http: String,
    admin: String,
    log: tempfile::NamedTempFile,
}

impl Running {
    /// Everything the host-agent has logged so far.
    fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `host-agent run` and waits for it to say where it serves.
fn start(manifest: &Path) -> Running {
    let cache = tempfile::tempdir().unwrap().keep();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = host_agent()
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--cache-dir",
        ])
        .arg(cache)
        .arg(manifest)
        .stdout(Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("host-agent said where it serves");
    // "Serving default/hello on http://A  (admin: http://B)"
    let urls: Vec<&str> = line.split("http://").skip(1).collect();
    let clean = |s: &str| s.split([' ', ')']).next().unwrap().to_string();
    Running {
        http: clean(urls[0]),
        admin: clean(urls[1]),
        child,
        log,
    }
}

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn runs_the_hello_example_and_serves_metrics() {
    let running = start(&examples().join("hello-http.yaml"));
    let body = curl(&[
        "-H",
        "Host: hello.localhost",
        &format!("http://{}/", running.http),
    ]);
    assert_eq!(body, "Hello from Weft!\n");
    // In local mode a lone HTTP workload answers any host.
    assert_eq!(
        curl(&[&format!("http://{}/", running.http)]),
        "Hello from Weft!\n"
    );

    let admin = &running.admin;
    assert_eq!(curl(&[&format!("http://{admin}/healthz")]), "ok\n");
    assert_eq!(curl(&[&format!("http://{admin}/readyz")]), "ok\n");
    let metrics = curl(&[&format!("http://{admin}/metrics")]);
    for series in [
        r#"weft_invocations_total{workload="default/hello",component="hello",outcome="ok"} 2"#,
        "weft_invocation_duration_seconds_bucket",
        "weft_instantiation_duration_seconds_count",
        "weft_active_instances",
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }
    let workloads = curl(&[&format!("http://{admin}/workloads")]);
    assert!(
        workloads.contains("wasi:http/incoming-handler"),
        "{workloads}"
    );
}

#[test]
fn stops_cleanly_on_sigterm() {
    let mut running = start(&examples().join("hello-http.yaml"));
    let pid = running.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "host-agent did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn invalid_yaml_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let err = refusal(
        &dir,
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nspec: [\n",
    );
    assert!(
        err.contains("workload.yaml") && err.contains("line"),
        "{err}"
    );
}

#[test]
fn unknown_fields_are_named_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let err = refusal(
        &dir,
        &HELLO.replace("      image:", "      imagePath: x\n      image:"),
    );
    assert!(
        err.contains("workload.yaml: line 8: unknown field `spec.components.0.imagePath`"),
        "{err}"
    );
}

#[test]
fn missing_fields_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = refusal(
        &dir,
        &HELLO.replace("      image: build/hello-http.wasm\n", ""),
    );
    assert!(
        err.contains("workload.yaml") && err.contains("missing field `image`"),
        "{err}"
    );
}

#[test]
fn a_missing_image_names_the_component() {
    let dir = tempfile::tempdir().unwrap();
    let err = refusal(&dir, &HELLO.replace("hello-http.wasm", "nope.wasm"));
    assert!(
        err.contains("component hello: image") && err.contains("nope.wasm"),
        "{err}"
    );
}

#[test]
fn a_core_module_or_garbage_names_the_component() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"not wasm at all").unwrap();
    let err = refusal(&dir, &HELLO.replace("build/hello-http.wasm", "core.wasm"));
    assert!(
        err.contains("component hello: is a core WebAssembly module"),
        "{err}"
    );
    let err = refusal(&dir, &HELLO.replace("build/hello-http.wasm", "junk.wasm"));
    assert!(
        err.contains("component hello: not a WebAssembly binary"),
        "{err}"
    );
}

#[test]
fn unsatisfied_imports_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let err = refusal(&dir, &HELLO.replace("hello-http.wasm", "greet-http.wasm"));
    assert!(
        err.contains(
            "component hello imports interfaces nothing provides: weft:examples/greet@0.1.0"
        ),
        "{err}"
    );
}

#[test]
fn every_example_manifest_starts() {
    for name in [
        "config-http",
        "faulty-http",
        "fetch-http",
        "linked-greet",
        "service-loop",
        "tcp-service",
        "volume-http",
    ] {
        let running = start(&examples().join(format!("{name}.yaml")));
        let workloads = curl(&[&format!("http://{}/workloads", running.admin)]);
        assert!(
            workloads.contains("\"state\": \"Running\""),
            "{name}: {workloads}"
        );
    }
}

/// Polls the host-agent's log until `check` holds, failing after ten seconds.
fn wait_for_log(running: &Running, what: &str, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check(&running.logs()) {
        assert!(
            Instant::now() < deadline,
            "no {what} in the log:\n{}",
            running.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn guest_logging_and_stdout_reach_the_log_with_their_origin() {
    let running = start(&examples().join("config-http.yaml"));
    curl(&[&format!("http://{}/", running.http)]);
    wait_for_log(&running, "wasi:logging record", |logs| {
        logs.lines().any(|l| {
            l.contains("served greeting")
                && l.contains("workload=default/config")
                && l.contains("context=\"config-http\"")
        })
    });

    let running = start(&examples().join("service-loop.yaml"));
    wait_for_log(&running, "service stdout", |logs| {
        logs.lines()
            .any(|l| l.contains("tick 3") && l.contains("stream=\"stdout\""))
    });
}
