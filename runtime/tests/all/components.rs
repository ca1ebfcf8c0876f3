//! Bad components fail alone with a reason naming them; imports are matched to plugins and
//! siblings; compiled components are cached on disk.

use crate::common::*;
use std::time::Duration;

use weft_runtime::{CodeSource, Compiler, ComponentSpec, Engine, Tier};

#[tokio::test]
async fn a_core_module_is_refused_naming_the_component() {
    let t = TestHost::start().await;
    let core = ComponentSpec::new("core", b"\0asm\x01\0\0\0".to_vec());
    let err = t
        .host
        .start_workload(http_workload("w", vec![core]))
        .await
        .unwrap_err();
    let err = err.to_string();
    assert!(
        err.contains("component core") && err.contains("core WebAssembly module"),
        "{err}"
    );
}

#[tokio::test]
async fn garbage_bytes_are_refused_naming_the_component() {
    let t = TestHost::start().await;
    let junk = ComponentSpec::new("junk", b"this is not wasm".to_vec());
    let err = t
        .host
        .start_workload(http_workload("w", vec![junk]))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("component junk: not a WebAssembly binary"),
        "{err}"
    );
    // A truncated component fails compilation, again naming it.
    let mut bytes = wasm("hello-http").to_vec();
    bytes.truncate(bytes.len() / 2);
    let cut = ComponentSpec::new("cut", bytes);
    let err = t
        .host
        .start_workload(http_workload("w", vec![cut]))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "component cut: failed to compile");
    // The cause is kept as the error's source, and shown by the chain status uses.
    let cause = std::error::Error::source(&err).expect("the compile error's cause");
    assert!(!cause.to_string().is_empty());
    let chain = err.to_chain();
    assert!(
        chain.starts_with("component cut: failed to compile: ") && chain.len() > 40,
        "{chain}"
    );
}

#[tokio::test]
async fn unsatisfied_imports_are_listed() {
    let t = TestHost::start().await;
    // greet-http imports weft:examples/greet, which only a sibling could provide.
    let err = t
        .host
        .start_workload(http_workload("w", vec![component("web", "greet-http")]))
        .await
        .unwrap_err()
        .to_chain();
    assert!(
        err.contains("component web imports interfaces nothing provides"),
        "{err}"
    );
    assert!(err.contains("weft:examples/greet@0.1.0"), "{err}");
}

#[tokio::test]
async fn an_unserved_host_interface_is_refused() {
    let t = TestHost::start().await;
    let mut w = http_workload("w", vec![component("hello", "hello-http")]);
    w.host_interfaces
        .push(interface("acme:ledger/entries@1.0.0", &[]));
    let err = t.host.start_workload(w).await.unwrap_err().to_chain();
    assert!(
        err.contains("no host plugin serves acme:ledger/entries@1.0.0"),
        "{err}"
    );
}

#[tokio::test]
async fn siblings_are_linked() {
    let t = TestHost::start().await;
    t.run(http_workload(
        "greet",
        vec![
            component("web", "greet-http"),
            component("greeter", "greeter"),
        ],
    ))
    .await;
    assert_eq!(
        t.get("greet.test", "/?name=Weft").await,
        (200, "Hello, Weft!\n".into())
    );
    let status = t.host.status("test/greet").await.unwrap();
    let web = status.components.iter().find(|c| c.name == "web").unwrap();
    assert!(
        web.imports
            .iter()
            .any(|i| i.starts_with("weft:examples/greet"))
    );
}

#[test]
fn one_digest_is_loaded_once_while_it_is_in_use() {
    let engine = Engine::builder().max_instances(10).build().unwrap();
    let first = engine.compile("a", &wasm("hello-http")).unwrap();
    let second = engine.compile("b", &wasm("hello-http")).unwrap();
    assert_eq!(first.source, CodeSource::Compiler);
    assert_eq!(second.source, CodeSource::Memory);
    assert!(std::sync::Arc::ptr_eq(&first.code, &second.code));
    // Other bytes are other code.
    let other = engine.compile("c", &wasm("greet-http")).unwrap();
    assert_eq!(other.source, CodeSource::Compiler);
    // Once nobody runs it, the code is let go (no cache dir here: compiled again).
    drop((first, second));
    let again = engine.compile("a", &wasm("hello-http")).unwrap();
    assert_eq!(again.source, CodeSource::Compiler);
}

#[test]
fn a_large_component_starts_on_baseline_code_and_then_gets_cranelifts() {
    // Every component counts as large here.
    let engine = Engine::builder()
        .max_instances(10)
        .compiler(Compiler::Tiered { baseline_above: 0 })
        .build()
        .unwrap();
    let first = engine.compile("a", &wasm("hello-http")).unwrap();
    assert_eq!(
        (first.source, first.code.tier),
        (CodeSource::Baseline, Tier::Baseline)
    );
    let optimized = engine.optimize("a", &wasm("hello-http")).unwrap();
    assert_eq!(
        (optimized.source, optimized.code.tier),
        (CodeSource::Compiler, Tier::Optimized)
    );
    assert_eq!(first.code.info, optimized.code.info);
    // From now on these bytes get Cranelift's code, compiled once.
    let again = engine.compile("b", &wasm("hello-http")).unwrap();
    assert_eq!(again.source, CodeSource::Memory);
    assert!(std::sync::Arc::ptr_eq(&again.code, &optimized.code));
    let twice = engine.optimize("b", &wasm("hello-http")).unwrap();
    assert_eq!(twice.source, CodeSource::Memory);

    // At or below the size, Cranelift compiles it at once.
    let size = wasm("hello-http").len();
    let engine = Engine::builder()
        .max_instances(10)
        .compiler(Compiler::Tiered {
            baseline_above: size,
        })
        .build()
        .unwrap();
    let small = engine.compile("a", &wasm("hello-http")).unwrap();
    assert_eq!(
        (small.source, small.code.tier),
        (CodeSource::Compiler, Tier::Optimized)
    );
}

/// Baseline code serves at once; the workload then moves to Cranelift's code as a live update
/// while requests run, and none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_moves_to_optimized_code_without_failing_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder()
        .max_instances(50)
        .compiler(Compiler::Tiered { baseline_above: 0 })
        .cache_dir(dir.path())
        .build()
        .unwrap();
    let t = TestHost::with_engine(engine).await;
    t.run(http_workload(
        "tiered",
        vec![component("hello", "hello-http")],
    ))
    .await;
    assert!(
        t.metrics_text()
            .contains(r#"weft_compilations_total{source="baseline"} 1"#)
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, stop) = (t.addr, stop.clone());
            tokio::spawn(async move {
                let mut served = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let answer = http_request(addr, "GET", "tiered.test", "/", "").await;
                    assert_eq!(answer, (200, "Hello from Weft!\n".into()));
                    served += 1;
                }
                served
            })
        })
        .collect();
    eventually(
        "the workload on optimized code",
        Duration::from_secs(60),
        || {
            let host = t.host.clone();
            async move {
                let status = host.status("test/tiered").await?;
                (status.components[0].tier == Tier::Optimized).then_some(())
            }
        },
    )
    .await;
    // A few more requests on the new code, then the clients stop.
    let answer = t.get("tiered.test", "/").await;
    assert_eq!(answer, (200, "Hello from Weft!\n".into()));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        assert!(client.await.unwrap() > 0);
    }
    let metrics = t.metrics_text();
    assert!(
        metrics.contains(r#"weft_compilations_total{source="compiler"} 1"#),
        "{metrics}"
    );
    // Only Cranelift's code is cached: a restarted host starts on it.
    let restarted = Engine::builder()
        .max_instances(10)
        .compiler(Compiler::Tiered { baseline_above: 0 })
        .cache_dir(dir.path())
        .build()
        .unwrap();
    let cached = restarted.compile("hello", &wasm("hello-http")).unwrap();
    assert_eq!(
        (cached.source, cached.code.tier),
        (CodeSource::Disk, Tier::Optimized)
    );
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let engine = || {
        Engine::builder()
            .max_instances(10)
            .cache_dir(dir.path())
            .build()
            .unwrap()
    };
    let first = engine().compile("hello", &wasm("hello-http")).unwrap();
    assert_eq!(first.source, CodeSource::Compiler);
    // A new engine (a restarted host) loads it instead of compiling.
    let second = engine().compile("hello", &wasm("hello-http")).unwrap();
    assert_eq!(second.source, CodeSource::Disk);
    assert_eq!(first.code.info, second.code.info);
    assert!(first.code.info.digest.starts_with("sha256:"));

    let t = TestHost::with_engine(engine()).await;
    t.run(http_workload(
        "cached",
        vec![component("hello", "hello-http")],
    ))
    .await;
    assert_eq!(t.get("cached.test", "/").await.0, 200);
    assert!(
        t.metrics_text()
            .contains(r#"weft_compilations_total{source="cache"} 1"#)
    );
}
