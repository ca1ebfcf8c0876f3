//! Weft's container images, built without Docker (`scripts/build-images.sh`), pushed to a real
//! registry with oras, pulled by a real containerd and run under runc the way the chart runs
//! them: as uid 65532 (the images' own user; `ctr` takes it from the image config) on a
//! read-only root filesystem, writable only where the chart mounts its
//! emptyDirs (`/var/cache/weft`, `/var/lib/weft`).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use weft_e2e::Registry;
use weft_e2e::cluster::http_get;
use weft_e2e::containerd::Containerd;
use weft_e2e::process::{Process, free_port, wait_until, without_test_env, workspace_root};

#[test]
fn the_images_build_without_docker_and_run_read_only_as_non_root() {
    let registry = Registry::start();
    let mut build = Command::new(workspace_root().join("scripts/build-images.sh"));
    without_test_env(&mut build);
    let built = build
        .args(["--push", &registry.addr])
        .env("TAG", "e2e")
        // The debug binaries the other tests run; the release build is the same script's default.
        .env("PROFILE", "dev")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "build-images.sh: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let containerd = Containerd::start(&registry.addr, "unused");
    let operator = format!("{}/weft/operator:e2e", registry.addr);
    let agent = format!("{}/weft/host-agent:e2e", registry.addr);
    for image in [&operator, &agent] {
        containerd.ctr_ok(&["images", "pull", "--plain-http", image]);
    }

    // The operator image prints the CRDs (what `operator crd` does), with nothing writable.
    // Container ids are unique per run: runc keeps its state outside containerd's directory.
    let (crd_id, run_id) = (
        format!("operator-crd-{}", std::process::id()),
        format!("host-agent-run-{}", std::process::id()),
    );
    let crds = containerd.ctr_ok(&[
        "run",
        "--rm",
        "--read-only",
        &operator,
        &crd_id,
        "/usr/local/bin/operator",
        "crd",
    ]);
    assert!(crds.contains("kind: CustomResourceDefinition"), "{crds}");

    // The host-agent image serves the hello example with only the chart's emptyDirs writable.
    let scratch = tempfile::tempdir().unwrap();
    let (cache, data) = (scratch.path().join("cache"), scratch.path().join("data"));
    for dir in [&cache, &data] {
        std::fs::create_dir(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let examples = workspace_root().join("examples");
    let (http, admin) = (free_port(), free_port());
    let (listen, admin_listen) = (format!("127.0.0.1:{http}"), format!("127.0.0.1:{admin}"));
    let mut run = containerd.ctr();
    let mut args = vec!["run", "--rm", "--net-host", "--read-only"];
    let mounts = [
        format!(
            "type=bind,src={},dst=/examples,options=rbind:ro",
            examples.display()
        ),
        format!(
            "type=bind,src={},dst=/var/cache/weft,options=rbind:rw",
            cache.display()
        ),
        format!(
            "type=bind,src={},dst=/var/lib/weft,options=rbind:rw",
            data.display()
        ),
    ];
    for mount in &mounts {
        args.extend(["--mount", mount.as_str()]);
    }
    args.extend([
        agent.as_str(),
        run_id.as_str(),
        "/usr/local/bin/host-agent",
        "run",
        "/examples/hello-http.yaml",
        "--listen",
        &listen,
        "--admin-listen",
        &admin_listen,
        "--image-dir=/var/cache/weft/images",
        "--cache-dir=/var/cache/weft/compiled",
        "--data-dir=/var/lib/weft",
    ]);
    run.args(&args);
    let process = Process::spawn(run, &scratch.path().join("host-agent.log"));
    let stop = || {
        for args in [
            &["tasks", "kill", "--signal", "SIGKILL", run_id.as_str()][..],
            &["tasks", "rm", "--force", run_id.as_str()],
            &["containers", "rm", run_id.as_str()],
        ] {
            let _ = containerd.ctr().args(args).output();
        }
    };
    let served = std::panic::catch_unwind(|| {
        wait_until(
            "the containerized host-agent to serve",
            Duration::from_secs(60),
            || http_get(&listen, "hello.localhost", "/").is_ok_and(|(code, _)| code == 200),
        );
        assert_eq!(
            http_get(&listen, "hello.localhost", "/").unwrap(),
            (200, "Hello from Weft!\n".to_string())
        );
        // It ran as the image's user, 65532, writing only to the mounted directories.
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(cache.join("images")).unwrap().uid();
        assert_eq!(owner, 65532, "the image store was written as uid {owner}");
        // What the chart's probes ask.
        for path in ["/healthz", "/readyz"] {
            assert_eq!(
                http_get(&admin_listen, "localhost", path).unwrap().0,
                200,
                "{path}"
            );
        }
    });
    stop();
    if let Err(panic) = served {
        eprintln!(
            "host-agent:\n{}\ncontainerd:\n{}",
            process.logs(),
            containerd.logs()
        );
        std::panic::resume_unwind(panic);
    }
}
