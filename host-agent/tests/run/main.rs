//! `host-agent run` as a user runs it: the real binary, real manifests from `examples/`, curl as
//! the client.

#[path = "../common/mod.rs"]
mod common;
mod shutdown;
mod sources;
mod toolchains;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Agent, agent, curl, examples, stderr};

/// Runs `host-agent run` on a manifest expected to be refused.
fn refused(manifest: &Path) -> Output {
    let output = agent().manifest(manifest).output();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    output
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

fn start(manifest: &Path) -> Agent {
    agent().manifest(manifest).start()
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
fn serves_a_wasi_0_3_component_from_one_shared_instance() {
    let running = start(&examples().join("sleep-p3.yaml"));
    // Twenty 300 ms requests at once through curl's own parallel mode.
    let url = format!("http://{}/?ms=300", running.http);
    let mut args = vec!["--parallel", "--parallel-immediate", "--parallel-max", "20"];
    args.extend(std::iter::repeat_n(url.as_str(), 20));
    let bodies = curl(&args);
    assert_eq!(bodies, "slept 300 ms\n".repeat(20));
    let metrics = curl(&[&format!("http://{}/metrics", running.admin)]);
    for series in [
        r#"weft_invocations_total{workload="default/sleep-p3",component="sleep",outcome="ok"} 20"#,
        r#"weft_instantiation_duration_seconds_count{workload="default/sleep-p3",component="sleep"} 1"#,
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }
    let workloads = curl(&[&format!("http://{}/workloads", running.admin)]);
    assert!(workloads.contains("wasi:http/handler@0.3.2"), "{workloads}");
}

#[test]
fn a_file_of_several_workloads_runs_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let with_host = |name: &str, wasm: &str| {
        format!(
            "{}  hostInterfaces:\n    - {{namespace: wasi, package: http, interfaces: [incoming-handler], config: {{host: {name}.localhost}}}}\n",
            HELLO
                .replace("name: hello\n", &format!("name: {name}\n"))
                .replace("hello-http.wasm", wasm)
        )
    };
    let text = format!(
        "# as kubectl apply -f takes it\n---\n{}---\n{}",
        with_host("one", "hello-http.wasm"),
        with_host("two", "hello-http-v2.wasm")
    );
    let running = start(&manifest(&dir, &text));
    for (host, body) in [
        ("one.localhost", "Hello from Weft!\n"),
        ("two.localhost", "Hello from Weft v2!\n"),
    ] {
        let got = curl(&[
            "-H",
            &format!("Host: {host}"),
            &format!("http://{}/", running.http),
        ]);
        assert_eq!(got, body, "{host}");
    }

    // The same Workload twice in one file is refused, as across files.
    let twice = format!(
        "{}---\n{}",
        with_host("one", "hello-http.wasm"),
        with_host("one", "hello-http.wasm")
    );
    let err = refusal(&dir, &twice);
    assert!(
        err.contains("both define the Workload default/one"),
        "{err}"
    );
}

#[test]
fn a_workload_deployment_runs_its_replicas_and_balances_among_them() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = std::fs::read_to_string(examples().join("hello-deployment.yaml")).unwrap();
    let other = format!(
        "{HELLO}  hostInterfaces:\n    - {{namespace: wasi, package: http, interfaces: [incoming-handler], config: {{host: other.localhost}}}}\n"
    );
    let running = start(&manifest(&dir, &format!("{deployment}---\n{other}")));
    for _ in 0..6 {
        let got = curl(&[
            "-H",
            "Host: hello-replicas.localhost",
            &format!("http://{}/", running.http),
        ]);
        assert_eq!(got, "Hello from Weft!\n");
    }
    // Round-robin: each of the three replicas answered two of the six requests; the other
    // Workload's host name is still its own.
    let metrics = curl(&[&format!("http://{}/metrics", running.admin)]);
    for replica in 0..3 {
        let series = format!(
            r#"weft_invocations_total{{workload="default/hello-replicas-{replica}",component="hello",outcome="ok"}} 2"#
        );
        assert!(metrics.contains(&series), "missing {series} in\n{metrics}");
    }
    let got = curl(&[
        "-H",
        "Host: other.localhost",
        &format!("http://{}/", running.http),
    ]);
    assert_eq!(got, "Hello from Weft!\n");
    assert!(
        !metrics.contains(r#"workload="default/hello""#),
        "{metrics}"
    );
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
        "blobstore",
        "cron",
        "faulty-http",
        "fetch-http",
        "kv-counter",
        "linked-greet",
        "messaging",
        "service-loop",
        "tcp-service",
        "volume-http",
        "hello-p3",
        "sleep-p3",
        "greet-p3",
        "plugins-p3",
        "service-p3",
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
fn wait_for_log(running: &Agent, what: &str, check: impl Fn(&str) -> bool) {
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

#[test]
fn the_hosts_isolation_flags_refuse_what_they_do_not_allow() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    let mounts_etc = HELLO.to_string()
        + "      volumeMounts:\n        - name: etc\n          mountPath: /etc\n  volumes:\n    - name: etc\n      hostPath:\n        path: /etc\n";
    let output = agent()
        .manifest(manifest(&dir, &mounts_etc))
        .arg(format!("--allow-host-path={}", allowed.path().display()))
        .output();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let err = stderr(&output);
    assert!(
        err.contains("volume etc: hostPath /etc is not under a prefix this host allows"),
        "{err}"
    );

    // hello-http with default limits reserves 64 MiB × 8.
    let output = agent()
        .manifest(examples().join("hello-http.yaml"))
        .arg("--memory-budget=100Mi")
        .output();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let err = stderr(&output);
    assert!(err.contains("needs 512 MiB of memory"), "{err}");
    assert!(err.contains("100 MiB free of its 100 MiB budget"), "{err}");
}

#[test]
fn a_counter_keeps_counting_across_runs_on_filesystem_redis_and_nats() {
    let nats = weft_e2e::NatsServer::start();
    let redis = weft_e2e::RedisServer::start();
    for backend in ["filesystem", "redis", "nats"] {
        let data = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(examples().join("kv-counter.yaml"))
            .unwrap()
            .replace("backend: filesystem", &format!("backend: {backend}"));
        let path = manifest(&dir, &text);
        let run = || {
            agent()
                .manifest(&path)
                .arg(format!("--data-dir={}", data.path().display()))
                .arg(format!("--nats-url={}", nats.url()))
                .arg(format!("--redis-url={}", redis.url()))
                .start()
        };
        let first = run();
        for n in 1..=2 {
            assert_eq!(
                first.get("/incr?key=visits", Some("counter.localhost")),
                format!("{n}\n"),
                "{backend}"
            );
        }
        drop(first);
        let second = run();
        assert_eq!(
            second.get("/incr?key=visits", Some("counter.localhost")),
            "3\n",
            "{backend}: the count outlives the host-agent"
        );
        if backend == "filesystem" {
            assert!(data.path().join("keyvalue/default/counter").is_dir());
        }
    }
}

#[test]
fn a_message_echo_answers_over_http_and_waits_for_nats_with_back_off() {
    let running = start(&examples().join("messaging.yaml"));
    let request = |agent: &Agent, body: &str| {
        curl(&[
            "-H",
            "Host: messaging.localhost",
            "-d",
            body,
            &format!("http://{}/request/echo.hi", agent.http),
        ])
    };
    assert_eq!(request(&running, "hello"), "hello");
    drop(running);

    // The same Workload on NATS, while NATS is not up yet: it waits, saying why, and starts
    // once the server is there.
    let port = weft_e2e::process::free_port();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(examples().join("messaging.yaml"))
        .unwrap()
        .replace(
            "        subscriptions: echo.>",
            "        subscriptions: echo.>\n        backend: nats",
        );
    let running = agent()
        .manifest(manifest(&dir, &text))
        .arg(format!("--nats-url=nats://127.0.0.1:{port}"))
        .arg("--image-pull-backoff=200ms")
        .spawn();
    running.wait("BackendBackOff in the status", |a| {
        let status = a.workloads();
        status.contains("BackendBackOff")
            && status.contains(&format!(
                "backend wasmcloud:messaging nats is unavailable: subscribing to default.echo.>: 127.0.0.1:{port}"
            ))
    });
    let nats = weft_e2e::NatsServer::on_port(port);
    running.wait("the workload to serve", |a| {
        a.stdout_lines().iter().any(|l| l.starts_with("Serving "))
    });
    assert_eq!(request(&running, "over nats"), "over nats");
    let mut from_cli = nats.client();
    from_cli.args([
        "request",
        "default.echo.cli",
        "from the cli",
        "--raw",
        "--timeout",
        "5s",
    ]);
    let output = from_cli.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "from the cli"
    );
}

/// Peak resident memory of a process, from /proc.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib * 1024
}

#[test]
fn a_100_mib_object_streams_through_without_sitting_in_memory() {
    let data = tempfile::tempdir().unwrap();
    let object = data.path().join("object.bin");
    // 100 MiB that are not all the same byte.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 104857600 /dev/urandom > {}",
            object.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let sha = |path: &Path| {
        let out = std::process::Command::new("sha256sum")
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let nats = weft_e2e::NatsServer::start();
    for backend in ["filesystem", "nats"] {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(examples().join("blobstore.yaml"))
            .unwrap()
            .replace("backend: filesystem", &format!("backend: {backend}"));
        let running = agent()
            .manifest(manifest(&dir, &text))
            .arg(format!(
                "--data-dir={}",
                data.path().join(backend).display()
            ))
            .arg(format!("--nats-url={}", nats.url()))
            .start();
        let url = format!("http://{}/big/object.bin", running.http);
        let before = peak_rss(running.child.id());
        let stored = curl(&[
            "-H",
            "Host: blobs.localhost",
            "-T",
            object.to_str().unwrap(),
            &url,
        ]);
        assert_eq!(
            stored, "stored 104857600 bytes in big/object.bin\n",
            "{backend}"
        );
        let copy = data.path().join(format!("copy-{backend}.bin"));
        curl(&[
            "-H",
            "Host: blobs.localhost",
            "-o",
            copy.to_str().unwrap(),
            &url,
        ]);
        assert_eq!(
            sha(&copy),
            sha(&object),
            "{backend}: the object comes back whole"
        );
        let grew = peak_rss(running.child.id()).saturating_sub(before);
        assert!(
            grew < 32 << 20,
            "{backend}: the host's peak memory grew by {} MiB moving a 100 MiB object",
            grew >> 20
        );
        let size = curl(&[
            "-H",
            "Host: blobs.localhost",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            &format!("{url}?range=1000-1009"),
        ]);
        assert_eq!(size, "10", "{backend}: an inclusive range of ten bytes");
    }
}
