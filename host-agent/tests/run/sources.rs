//! Values from ConfigMaps and Secrets under `host-agent run`: files in `--sources-dir`.

use super::*;

/// Values from ConfigMaps and Secrets, locally: read from `--sources-dir` laid out as the
/// kubelet projects them; without it (or with the key missing) the run is refused, naming
/// what is missing and never a value; a name that climbs out of the directory is refused.
#[test]
fn values_from_secrets_and_config_maps_come_from_the_sources_dir() {
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("sources");
    std::fs::create_dir_all(sources.join("secrets/db")).unwrap();
    std::fs::create_dir_all(sources.join("configmaps/settings")).unwrap();
    std::fs::write(sources.join("secrets/db/password"), "s3cret").unwrap();
    std::fs::write(
        sources.join("configmaps/settings/greeting"),
        "Hello from a file",
    )
    .unwrap();
    let text = |secret: &str| {
        format!(
            "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: conf
spec:
  components:
    - name: config
      image: build/config-http.wasm
      env:
        - name: PASSWORD
          valueFrom: {{secretKeyRef: {{name: {secret}, key: password}}}}
  hostInterfaces:
    - {{namespace: wasi, package: http, interfaces: [incoming-handler]}}
    - namespace: wasi
      package: config
      interfaces: [store]
      version: 0.2.0-draft
      configFrom: [{{configMapRef: {{name: settings}}}}]
"
        )
    };
    let path = manifest(&dir, &text("db"));
    let running = agent()
        .manifest(&path)
        .arg("--sources-dir")
        .arg(&sources)
        .start();
    assert_eq!(running.get("/", None), "Hello from a file\n");
    assert!(running.get("/env", None).contains("PASSWORD=s3cret\n"));
    drop(running);

    let without = stderr(&refused(&path));
    assert!(
        without.contains(
            "host-agent run reads ConfigMaps from --sources-dir (DIR/configmaps/settings/<key>)"
        ),
        "{without}"
    );
    for (secret, needle) in [
        ("absent", "Secret absent not found"),
        ("..", "Secret ..: not a valid name"),
    ] {
        let output = agent()
            .manifest(manifest(&dir, &text(secret)))
            .arg("--sources-dir")
            .arg(&sources)
            .output();
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let err = stderr(&output);
        assert!(err.contains(needle), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
