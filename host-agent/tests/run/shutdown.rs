//! Stopping `host-agent run`: SIGTERM ends it cleanly, even during a long compile.

use super::*;

#[test]
fn stops_cleanly_on_sigterm() {
    let mut running = start(&examples().join("hello-http.yaml"));
    sigterm_and_wait_for_exit(&mut running, "host-agent did not stop");
}

/// Sends SIGTERM and waits up to fifteen seconds for a clean exit, failing with `what`.
fn sigterm_and_wait_for_exit(running: &mut common::Agent, what: &str) {
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
            return;
        }
        assert!(Instant::now() < deadline, "{what}:\n{}", running.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A component that takes long to compile: thousands of long functions.
fn slow_to_compile() -> Vec<u8> {
    let body = format!(
        "local.get 0 {}",
        "i32.const 7 i32.mul i32.const 3 i32.add ".repeat(200)
    );
    let functions: String = (0..4000)
        .map(|i| format!("(func (export \"f{i}\") (param i32) (result i32) {body})\n"))
        .collect();
    wat::parse_str(format!("(component (core module {functions}))")).unwrap()
}

#[test]
fn sigterm_during_a_compile_exits_at_once_and_caches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.wasm"), slow_to_compile()).unwrap();
    let manifest = common::workload(dir.path(), "big", &["big.wasm"], "");
    let store = dir.path().join("store");
    let mut running = agent().manifest(&manifest).image_dir(&store).spawn();
    // Its status says what it is doing: compiling (a local file is never "Pulling").
    running.wait("the compile to start", |a| {
        a.workloads().contains("Compiling")
    });
    // It exits without waiting for the compile, which takes far longer than fifteen seconds in
    // a debug build (about forty here).
    sigterm_and_wait_for_exit(&mut running, "host-agent waited for the compile");
    // No compiled artifact (`<engine>/<digest>.cwasm`) was written for it.
    let cached: Vec<_> = std::fs::read_dir(store.join("compiled"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect();
    assert!(
        cached.is_empty(),
        "a compile cut short was cached: {cached:?}"
    );
}
