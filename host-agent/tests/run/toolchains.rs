//! Components from toolchains other than Rust's wit-bindgen, as users bring them: JavaScript
//! (componentize-js), Python (componentize-py) and a composition made by `wac plug`, each
//! served fresh (an instance per request) and from a warm pool; the two large ones start on
//! baseline code and move to Cranelift's.

use std::time::Duration;

use super::common::{agent, curl, examples};

/// An example manifest, and a copy of it as a second Workload `<name>-pooled` at host
/// `pooled.<host>` with a warm pool of two.
fn fresh_and_pooled(dir: &tempfile::TempDir, example: &str, host: &str) -> std::path::PathBuf {
    let build = format!("{}/build/", examples().display());
    let fresh = std::fs::read_to_string(examples().join(format!("{example}.yaml")))
        .unwrap()
        .replace("build/", &build);
    let pooled = fresh
        .replace(
            &format!("name: {example}\n"),
            &format!("name: {example}-pooled\n"),
        )
        .replace(&format!("host: {host}"), &format!("host: pooled.{host}"))
        .replace(".wasm\n", ".wasm\n      pool: {size: 2}\n");
    assert!(
        pooled.contains("pool:") && pooled.contains("-pooled"),
        "{pooled}"
    );
    let path = dir.path().join(format!("{example}.yaml"));
    std::fs::write(&path, format!("{fresh}---\n{pooled}")).unwrap();
    path
}

#[test]
fn components_from_other_toolchains_serve_fresh_and_from_a_warm_pool() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "hello-js",
            "hello-js.localhost",
            "/",
            "Hello from JavaScript!\n",
        ),
        (
            "hello-python",
            "hello-python.localhost",
            "/",
            "Hello from Python!\n",
        ),
        (
            "greet-composed",
            "greet-composed.localhost",
            "/?name=Weft",
            "Hello, Weft!\n",
        ),
    ];
    // Cranelift is optimised in debug builds too (Cargo.toml), or the 13 MB JavaScript engine
    // would take minutes to compile.
    let mut builder = agent().ready_within(Duration::from_secs(300));
    for (example, host, ..) in cases {
        builder = builder.manifest(fresh_and_pooled(&dir, example, host));
    }
    let running = builder.start();
    let requests = 5;
    for (example, host, path, answer) in cases {
        for host in [host.to_string(), format!("pooled.{host}")] {
            for _ in 0..requests {
                assert_eq!(
                    running.get(path, Some(&host)),
                    answer,
                    "{example} at {host}"
                );
            }
        }
        // Fresh: an instance per request. Pooled: the pool's instances, reused.
        let made = |workload: &str| {
            let series = format!(
                r#"weft_instantiation_duration_seconds_count{{workload="default/{workload}","#
            );
            let metrics = running.metrics();
            metrics
                .lines()
                .filter(|l| l.starts_with(&series))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        };
        assert_eq!(made(example), requests as f64, "{example} fresh");
        let pooled = made(&format!("{example}-pooled"));
        assert!(
            pooled < requests as f64,
            "{example} pooled made {pooled} instances for {requests} requests"
        );
    }
    // The JavaScript and Python runtimes (13 and 18 MB) started on Winch's code, the 44 KB
    // composition on Cranelift's; then Cranelift compiles the two and they move to its code,
    // serving as before.
    let metrics = running.metrics();
    assert!(
        metrics.contains(r#"weft_compilations_total{source="baseline"} 2"#),
        "{metrics}"
    );
    weft_e2e::process::wait_until(
        "Cranelift's code for the JavaScript and Python components",
        Duration::from_secs(180),
        || {
            running
                .metrics()
                .contains(r#"weft_compilations_total{source="compiler"} 3"#)
        },
    );
    for (example, host, path, answer) in cases {
        for host in [host.to_string(), format!("pooled.{host}")] {
            assert_eq!(
                running.get(path, Some(&host)),
                answer,
                "{example} at {host}"
            );
        }
    }
    let workloads = curl(&[&format!("http://{}/workloads", running.admin)]);
    assert_eq!(
        workloads.matches("\"state\": \"Running\"").count(),
        6,
        "{workloads}"
    );
}
