//! `host-agent dev`: a change to a component (built by `--build` from a `--watch`ed source, or
//! written directly) or to a manifest is a live update. Requests running all along see no
//! failure, the response changes, the memory backend keeps its values, and a failed build, a
//! broken component or a broken manifest leaves the old version serving and says why.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{agent, example_wasm};

const V1: &str = "Hello from Weft!\n";
const V2: &str = "Hello from Weft v2!\n";

/// One GET through curl: its status and body.
fn get(http: &str, host: &str, path: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Host: {host}"))
        .arg(format!("http://{http}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "000"));
    (status.to_owned(), body.to_owned())
}

/// Replaces `path` as a build tool does: write aside, then rename over it.
fn replace(path: &Path, bytes: &[u8]) {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, bytes).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

#[test]
fn changes_are_live_updates_and_broken_ones_keep_the_old_version_serving() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let which = src.join("which");
    std::fs::write(&which, example_wasm("hello-http").display().to_string()).unwrap();
    let hello = dir.path().join("hello.wasm");
    std::fs::copy(example_wasm("hello-http"), &hello).unwrap();
    std::fs::copy(
        example_wasm("kv-counter-http"),
        dir.path().join("counter.wasm"),
    )
    .unwrap();
    let manifest = dir.path().join("app.yaml");
    let manifests = "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: hello, namespace: default}
spec:
  components: [{name: hello, image: ./hello.wasm}]
  hostInterfaces:
    - {namespace: wasi, package: http, interfaces: [incoming-handler], version: 0.2.0, config: {host: hello.localhost}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: counter, namespace: default}
spec:
  components: [{name: counter, image: ./counter.wasm}]
  hostInterfaces:
    - {namespace: wasi, package: http, interfaces: [incoming-handler], version: 0.2.0, config: {host: counter.localhost}}
    - {namespace: wasi, package: keyvalue, interfaces: [store, atomics], version: 0.2.0-draft}
";
    std::fs::write(&manifest, manifests).unwrap();
    // The "build" copies the component `src/which` names: changing the source changes what
    // it produces, and naming a file that is not there fails it.
    let build = format!("cp \"$(cat '{}')\" '{}'", which.display(), hello.display());
    let mut running = agent()
        .dev()
        .manifest(&manifest)
        .arg("--watch")
        .arg(&src)
        .arg("--build")
        .arg(&build)
        .start();
    running.wait_for_stdout("Watching");
    let http = running.http.clone();
    assert_eq!(
        get(&http, "hello.localhost", "/"),
        ("200".into(), V1.into())
    );
    assert_eq!(get(&http, "counter.localhost", "/incr?key=k").1.trim(), "1");

    // Requests all along the swap: none fails, and the answer changes.
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, answered, failed, http) =
            (stop.clone(), answered.clone(), failed.clone(), http.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = get(&http, "hello.localhost", "/");
                answered.fetch_add(1, Ordering::Relaxed);
                if status != "200" || (body != V1 && body != V2) {
                    failed.fetch_add(1, Ordering::Relaxed);
                    failures.push((status, body));
                }
            }
            failures
        })
    };
    std::fs::write(&which, example_wasm("hello-http-v2").display().to_string()).unwrap();
    running.wait("the new version to answer", |a| {
        get(&a.http, "hello.localhost", "/").1 == V2
    });
    let before = answered.load(Ordering::Relaxed);
    running.wait("requests after the swap", |_| {
        answered.load(Ordering::Relaxed) > before + 20
    });
    stop.store(true, Ordering::Relaxed);
    let failures = load.join().unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(
        running
            .stdout_lines()
            .iter()
            .any(|l| l == "Updated default/hello"),
        "{:?}",
        running.stdout_lines()
    );
    // The memory backend's values outlive the swap.
    assert_eq!(get(&http, "counter.localhost", "/incr?key=k").1.trim(), "2");

    // A build that fails: said, and v2 serves on.
    std::fs::write(&which, "/no/such/component.wasm").unwrap();
    running.wait("the failed build to be reported", |a| {
        a.logs().contains("the build failed")
    });
    assert_eq!(
        get(&http, "hello.localhost", "/"),
        ("200".into(), V2.into())
    );

    // A component that does not compile: said, naming it, and v2 serves on.
    replace(&hello, b"\0asm\x01\0\x01\0 this is not a component");
    running.wait("the broken component to be reported", |a| {
        a.logs().lines().any(|l| {
            l.starts_with("error: default/hello: component hello")
                && l.ends_with("still serving the previous version")
        })
    });
    assert_eq!(
        get(&http, "hello.localhost", "/"),
        ("200".into(), V2.into())
    );

    // A manifest that does not load: said, and everything serves on.
    replace(
        &manifest,
        b"apiVersion: weft.dev/v1alpha1\nkind: Workload\nspec: [",
    );
    running.wait("the broken manifest to be reported", |a| {
        a.logs().lines().any(|l| {
            l.starts_with("error:")
                && l.contains("app.yaml")
                && l.ends_with("still serving the previous version")
        })
    });
    assert_eq!(
        get(&http, "hello.localhost", "/"),
        ("200".into(), V2.into())
    );
    assert_eq!(get(&http, "counter.localhost", "/incr?key=k").1.trim(), "3");

    // Fixed, it is applied again; a Workload no manifest defines any more is stopped.
    replace(&manifest, manifests.split("---").next().unwrap().as_bytes());
    running.wait("counter to be stopped", |a| {
        a.stdout_lines()
            .iter()
            .any(|l| l == "Stopped default/counter: no manifest defines it any more")
    });
    assert_eq!(get(&http, "counter.localhost", "/").0, "404");
}

/// The view `dev` prints on stdout: each request and the guests' log lines, as JSON lines with
/// `--json` (text otherwise, coloured on a terminal).
#[test]
fn dev_shows_each_request_and_the_guests_logs() {
    let mut running = agent()
        .dev()
        .arg("--json")
        .manifest(common::examples().join("config-http.yaml"))
        .start();
    running.wait_for_stdout("Watching");
    assert_eq!(
        get(&running.http, "config.localhost", "/all").0,
        "200".to_string()
    );
    let events = |kind: &str| -> Vec<serde_json::Value> {
        running
            .stdout_lines()
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
            .filter(|e| e["kind"] == kind)
            .collect()
    };
    running.wait("the request and the guest's log line", |_| {
        !events("request").is_empty() && !events("log").is_empty()
    });
    let requests = events("request");
    assert_eq!(requests[0]["method"], "GET");
    assert_eq!(requests[0]["path"], "/all");
    assert_eq!(requests[0]["status"], 200);
    assert_eq!(requests[0]["workload"], "default/config");
    assert!(requests[0]["ms"].as_f64().unwrap() > 0.0, "{}", requests[0]);
    let log = &events("log")[0];
    assert_eq!(log["component"], "config", "{log}");
    assert_eq!(log["level"], "INFO");
    assert!(
        log["message"]
            .as_str()
            .unwrap()
            .contains("served all config"),
        "{log}"
    );
    // Shown in the view, not logged twice on stderr.
    assert!(!running.logs().contains("served all config"));
    assert_eq!(events("serving")[0]["workload"], "default/config");
}
