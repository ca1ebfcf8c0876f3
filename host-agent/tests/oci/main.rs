//! Components from OCI registries, end to end: the real `host-agent` binary, a real registry
//! (CNCF distribution, with htpasswd for credentials), oras as a client no one here wrote, and
//! curl. Registries a tenant controls, answering what an attacker would, are in
//! `hostile_registries`.

#[path = "../common/mod.rs"]
mod common;
mod hostile_registries;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::registry::{Registry, docker_config, free_port, tool};
use common::{Agent, agent, example_wasm, stderr, stdout, workload};

const HELLO: &str = "Hello from Weft!\n";

/// `host-agent push`; returns the manifest digest it prints.
fn push(wasm: &Path, reference: &str, registry_config: Option<&Path>) -> String {
    let mut cmd = common::host_agent();
    cmd.arg("push").arg(wasm).arg(reference);
    if let Some(config) = registry_config {
        cmd.arg("--registry-config").arg(config);
    }
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "push failed: {}", stderr(&output));
    let out = stdout(&output);
    out.lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .to_string()
}

/// The status JSON of one component, as the admin endpoint reports it.
fn component_status(agent: &Agent, workload: &str) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(&agent.workloads()).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == format!("default/{workload}"))
        .map(|w| w["components"][0].clone())
        .unwrap_or(serde_json::Value::Null)
}

/// Waits until `workload` waits on its image with a message containing `needle`.
fn wait_for_pull_failure(agent: &Agent, workload: &str, needle: &str) -> serde_json::Value {
    agent.wait(&format!("{workload} to fail with {needle:?}"), |a| {
        let status = component_status(a, workload);
        status["state"] == "Waiting"
            && status["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle))
    });
    component_status(agent, workload)
}

#[test]
fn pushed_component_runs_by_tag_and_by_digest() {
    let registry = Registry::start();
    let image = registry.image("team/hello");
    let digest = push(&example_wasm("hello-http"), &format!("{image}:1.0"), None);
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    let dir = tempfile::tempdir().unwrap();
    let by_tag = workload(dir.path(), "by-tag", &[&format!("{image}:1.0")], "");
    let first = agent().manifest(&by_tag).start();
    assert_eq!(first.get("/", None), HELLO);
    let status = component_status(&first, "by-tag");
    assert_eq!(status["state"], "Running");
    assert_eq!(status["imageId"], format!("{image}@{digest}"));
    let layer = common::host_agent()
        .args(["inspect", "--json"])
        .arg(example_wasm("hello-http"))
        .output()
        .unwrap();
    let inspected: serde_json::Value = serde_json::from_str(&stdout(&layer)).unwrap();
    assert_eq!(status["digest"], inspected["digest"]);
    assert!(
        status["exports"]
            .to_string()
            .contains("wasi:http/incoming-handler@0.2"),
        "{status}"
    );
    drop(first);

    let by_digest = workload(dir.path(), "by-digest", &[&format!("{image}@{digest}")], "");
    let second = agent().manifest(&by_digest).start();
    assert_eq!(second.get("/", None), HELLO);

    // inspect by reference reads the same component back from the registry.
    let output = common::host_agent()
        .args(["inspect", &format!("{image}:1.0"), "--image-dir"])
        .arg(dir.path().join("inspect-store"))
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        text.contains(&format!("Image ID: {image}@{digest}"))
            && text.contains("Exports:\n  wasi:http/incoming-handler@0.2"),
        "{text}"
    );
}

#[test]
fn component_pushed_by_oras_runs() {
    let registry = Registry::start();
    let reference = format!("{}:oras", registry.image("team/hello"));
    let build = example_wasm("hello-http").parent().unwrap().to_path_buf();
    let output = Command::new(tool("oras"))
        .current_dir(&build)
        .args([
            "push",
            "--plain-http",
            &reference,
            "hello-http.wasm:application/wasm",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "oras push: {output:?}");

    let dir = tempfile::tempdir().unwrap();
    let manifest = workload(dir.path(), "oras", &[&reference], "");
    let host = agent().manifest(&manifest).start();
    assert_eq!(host.get("/", None), HELLO);
}

#[test]
fn credentials_come_from_the_registry_config() {
    let registry = Registry::with_user("weft", "s3cret-pass");
    let dir = tempfile::tempdir().unwrap();
    let good = docker_config(dir.path(), &registry.addr, "weft", "s3cret-pass");
    let image = format!("{}:1.0", registry.image("private/hello"));
    push(&example_wasm("hello-http"), &image, Some(&good));

    let manifest = workload(dir.path(), "private", &[&image], "");
    let anonymous = agent().manifest(&manifest).spawn();
    let status = wait_for_pull_failure(&anonymous, "private", "401 Unauthorized");
    assert!(
        status["reason"] == "ErrImagePull" || status["reason"] == "ImagePullBackOff",
        "{status}"
    );
    drop(anonymous);

    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong = docker_config(wrong_dir.path(), &registry.addr, "weft", "guess");
    let wrong_password = agent().manifest(&manifest).registry_config(&wrong).spawn();
    wait_for_pull_failure(&wrong_password, "private", "401 Unauthorized");
    assert!(
        !wrong_password.logs().contains("guess"),
        "a password was logged"
    );
    drop(wrong_password);

    let authorized = agent().manifest(&manifest).registry_config(&good).start();
    assert_eq!(authorized.get("/", None), HELLO);
    assert!(
        !authorized.logs().contains("s3cret-pass"),
        "a password was logged"
    );
}

/// A private image on the host is not a way around the registry's credentials check: another
/// Workload reuses it only with credentials the registry accepted for it (the kubelet's image
/// credential verification).
#[test]
fn a_stored_private_image_is_not_run_without_accepted_credentials() {
    let registry = Registry::with_user("weft", "s3cret-pass");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let good = docker_config(dir.path(), &registry.addr, "weft", "s3cret-pass");
    let image = format!("{}:1.0", registry.image("private/hello"));
    push(&example_wasm("hello-http"), &image, Some(&good));
    let if_not_present = workload(dir.path(), "private", &[&image], "");
    let never = workload(
        dir.path(),
        "never",
        &[&image],
        "      imagePullPolicy: Never\n",
    );

    // Pulled once with credentials the registry accepts.
    let owner = agent()
        .manifest(&if_not_present)
        .image_dir(&store)
        .registry_config(&good)
        .start();
    assert_eq!(owner.get("/", None), HELLO);
    drop(owner);

    // Without credentials, IfNotPresent asks the registry, which refuses.
    let anonymous = agent().manifest(&if_not_present).image_dir(&store).spawn();
    wait_for_pull_failure(&anonymous, "private", "401 Unauthorized");
    assert_eq!(anonymous.metric("weft_blob_downloads_total"), 0.0);
    drop(anonymous);

    // Never cannot ask the registry, so the stored image is refused outright.
    let output = agent().manifest(&never).image_dir(&store).output();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("pulled with other credentials"),
        "{}",
        stderr(&output)
    );

    // The credentials the registry accepted reuse it with no registry at all.
    registry.stop();
    let again = agent()
        .manifest(&never)
        .image_dir(&store)
        .registry_config(&good)
        .start();
    assert_eq!(again.get("/", None), HELLO);
    assert_eq!(again.metric("weft_blob_downloads_total"), 0.0);
}

#[test]
fn each_pull_failure_has_its_own_reason_and_the_host_keeps_serving() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();

    // A healthy workload beside the broken ones.
    let healthy_image = format!("{}:1.0", registry.image("team/hello"));
    push(&example_wasm("hello-http"), &healthy_image, None);
    let healthy = workload(dir.path(), "healthy", &[&healthy_image], "");
    std::fs::write(
        &healthy,
        std::fs::read_to_string(&healthy).unwrap()
            + "  hostInterfaces:\n    - namespace: wasi\n      package: http\n      interfaces: [incoming-handler]\n      config:\n        host: healthy.localhost\n",
    )
    .unwrap();

    // Nothing listens on this port.
    let unreachable = workload(
        dir.path(),
        "unreachable",
        &[&format!("127.0.0.1:{}/team/hello:1.0", free_port())],
        "",
    );
    let unknown_image = format!("{}:not-yet", registry.image("team/hello"));
    let unknown = workload(dir.path(), "unknown", &[&unknown_image], "");

    // A container-image layer instead of a component.
    let tarball = dir.path().join("layer.tar");
    std::fs::write(&tarball, b"not a component").unwrap();
    let tar_image = format!("{}:1.0", registry.image("team/tarball"));
    let output = Command::new(tool("oras"))
        .current_dir(dir.path())
        .args([
            "push",
            "--plain-http",
            &tar_image,
            "layer.tar:application/vnd.oci.image.layer.v1.tar",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let wrong_type = workload(dir.path(), "wrong-type", &[&tar_image], "");

    // A blob the registry corrupts on disk: same length, one byte changed.
    let tampered_image = format!("{}:1.0", registry.image("team/tampered"));
    push(&example_wasm("greeter"), &tampered_image, None);
    let layer = common::host_agent()
        .args(["inspect", "--json"])
        .arg(example_wasm("greeter"))
        .output()
        .unwrap();
    let layer_digest =
        serde_json::from_str::<serde_json::Value>(&stdout(&layer)).unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
    let blob = registry.blob_file(&layer_digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let tampered = workload(dir.path(), "tampered", &[&tampered_image], "");

    let host = agent()
        .manifest(&healthy)
        .manifest(&unreachable)
        .manifest(&unknown)
        .manifest(&wrong_type)
        .manifest(&tampered)
        .arg("--image-pull-backoff")
        .arg("200ms")
        .spawn();
    wait_for_pull_failure(&host, "unreachable", "is unreachable");
    wait_for_pull_failure(&host, "unknown", "manifest unknown");
    wait_for_pull_failure(&host, "wrong-type", "wrong media type");
    wait_for_pull_failure(&host, "tampered", "digest mismatch");
    // Failures are retried with back-off, in the kubelet's words.
    host.wait("ImagePullBackOff", |a| {
        component_status(a, "unknown")["reason"] == "ImagePullBackOff"
    });

    host.wait("the healthy workload", |a| {
        component_status(a, "healthy")["state"] == "Running"
    });
    assert_eq!(host.get("/", Some("healthy.localhost")), HELLO);
    // The tampered bytes were never compiled, let alone run: only the healthy one was.
    assert_eq!(
        host.metric("weft_compilations_total{source=\"compiler\"}"),
        1.0
    );

    // Where waiting helps, it does: push the missing tag and the retry picks it up.
    push(&example_wasm("hello-http"), &unknown_image, None);
    host.wait("the retried pull", |a| {
        component_status(a, "unknown")["state"] == "Running"
    });
}

#[test]
fn two_workloads_on_one_digest_download_and_compile_once() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let image = registry.image("team/hello");
    push(&example_wasm("hello-http"), &format!("{image}:a"), None);
    push(&example_wasm("hello-http"), &format!("{image}:b"), None);
    let host = |name: &str| {
        format!(
            "  hostInterfaces:\n    - namespace: wasi\n      package: http\n      interfaces: [incoming-handler]\n      config:\n        host: {name}.localhost\n"
        )
    };
    let one = workload(dir.path(), "one", &[&format!("{image}:a")], "");
    let two = workload(dir.path(), "two", &[&format!("{image}:b")], "");
    for (path, name) in [(&one, "one"), (&two, "two")] {
        let text = std::fs::read_to_string(path).unwrap() + &host(name);
        std::fs::write(path, text).unwrap();
    }

    let host = agent().manifest(&one).manifest(&two).start();
    assert_eq!(host.get("/", Some("one.localhost")), HELLO);
    assert_eq!(host.get("/", Some("two.localhost")), HELLO);
    assert_eq!(host.metric("weft_blob_downloads_total"), 1.0);
    assert_eq!(
        host.metric("weft_compilations_total{source=\"compiler\"}"),
        1.0
    );
    // The second shares the first's code in memory: not even loaded from disk again.
    assert_eq!(
        host.metric("weft_compilations_total{source=\"memory\"}"),
        1.0
    );
    assert_eq!(
        host.metric("weft_compilations_total{source=\"cache\"}"),
        0.0
    );
}

#[test]
fn pull_policies_follow_kubernetes() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let image = format!("{}:1.0", registry.image("team/hello"));
    push(&example_wasm("hello-http"), &image, None);

    // Never, with nothing on the host: refused at once, not retried.
    let never = workload(
        dir.path(),
        "never",
        &[&image],
        "      imagePullPolicy: Never\n",
    );
    let output = agent().manifest(&never).image_dir(&store).output();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("pull policy is Never"),
        "{}",
        stderr(&output)
    );

    // IfNotPresent (the default for a tag other than latest) pulls once...
    let default = workload(dir.path(), "default", &[&image], "");
    let first = agent().manifest(&default).image_dir(&store).start();
    assert_eq!(first.metric("weft_blob_downloads_total"), 1.0);
    drop(first);

    // ...and then runs from the host's store, even with the registry gone.
    registry.stop();
    for manifest in [&default, &never] {
        let again = agent().manifest(manifest).image_dir(&store).start();
        assert_eq!(again.get("/", None), HELLO);
        assert_eq!(again.metric("weft_blob_downloads_total"), 0.0);
        assert_eq!(
            again.metric("weft_image_pulls_total{result=\"present\"}"),
            1.0
        );
        assert_eq!(
            again.metric("weft_compilations_total{source=\"cache\"}"),
            1.0
        );
    }

    // Always asks the registry every time, so with it gone the pull fails.
    let always = workload(
        dir.path(),
        "always",
        &[&image],
        "      imagePullPolicy: Always\n",
    );
    let host = agent().manifest(&always).image_dir(&store).spawn();
    wait_for_pull_failure(&host, "always", "is unreachable");
}

#[test]
fn garbage_collection_keeps_what_the_host_is_about_to_run() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let hello = format!("{}:1.0", registry.image("team/hello"));
    let other = format!("{}:2.0", registry.image("team/other"));
    push(&example_wasm("hello-http"), &hello, None);
    push(&example_wasm("hello-http-v2"), &other, None);
    for image in [&hello, &other] {
        let manifest = workload(dir.path(), "pull", &[image], "");
        drop(agent().manifest(&manifest).image_dir(&store).start());
    }
    registry.stop();
    let blobs = || {
        std::fs::read_dir(store.join("blobs/sha256"))
            .unwrap()
            .count()
    };
    assert_eq!(blobs(), 2);

    // Both images now go unused for longer than the GC age...
    let unused_for = |age: std::time::Duration| {
        std::fs::read_dir(store.join("blobs/sha256"))
            .unwrap()
            .all(|b| {
                b.unwrap()
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() > age)
            })
    };
    common::wait_until("the blobs to age", || {
        unused_for(std::time::Duration::from_secs(2))
    });

    // ...yet a host starting a `Never` Workload on one of them keeps it (the sweep at start
    // knows what it is about to run) and removes only the other.
    let never = workload(
        dir.path(),
        "never",
        &[&hello],
        "      imagePullPolicy: Never\n",
    );
    let host = agent()
        .manifest(&never)
        .image_dir(&store)
        .arg("--image-gc-age=1s")
        .start();
    assert_eq!(host.get("/", None), HELLO);
    host.wait("the unused image to be collected", |_| blobs() == 1);
    assert_eq!(host.get("/", None), HELLO);
}
