//! The host-agent's Events on a Workload, as `kubectl describe wl` shows them.

use std::time::Duration;

use weft_e2e::Cluster;

pub fn the_hosts_events_show_in_describe(cluster: &Cluster, v1: &str) {
    // --- the host's Events show in `kubectl describe wl`: a pull that fails, and a service
    // that exits and is restarted until it used up its restarts
    let ticker = cluster.push_example("service-loop", "1.0");
    let missing = v1.replace("hello-http:1.0", "missing:1.0");
    let out = cluster
        .control_plane
        .apply(&ticker_manifest(v1, &ticker, Some(&missing)));
    assert!(out.status.success(), "{out:?}");
    let describe = |c: &Cluster| c.kubectl_ok(&["describe", "wl", "ticker"]);
    cluster.wait(
        "the pull failure in describe",
        Duration::from_secs(60),
        |c| {
            let text = describe(c);
            text.contains("Failed to pull image") && text.contains("BackOff")
        },
    );
    // Without the missing component, the service runs, exits, restarts once and gives up.
    let out = cluster
        .control_plane
        .apply(&ticker_manifest(v1, &ticker, None));
    assert!(out.status.success(), "{out:?}");
    cluster.wait(
        "the service's restarts in describe",
        Duration::from_secs(60),
        |c| {
            let text = describe(c);
            text.contains("Unhealthy")
                && text.contains("Service ticker stopped: exited with an error")
                && text.contains("used up its restarts")
                && text.contains("Pulled")
                && text.contains("Started")
        },
    );
    let text = describe(cluster);
    assert!(text.contains("weft-host-agent"), "{text}");
    eprintln!(
        "kubectl describe wl ticker, Events:{}",
        text.split("Events:").nth(1).unwrap_or_default()
    );
    cluster.kubectl_ok(&["delete", "wl", "ticker", "--timeout=30s"]);
}

/// A Workload with hello (`v1`), a service (`ticker`) that exits after two ticks and may restart
/// once, and optionally a component whose image is `missing`.
fn ticker_manifest(v1: &str, ticker: &str, missing: Option<&str>) -> String {
    let missing = missing
        .map(|image| format!("    - name: missing\n      image: {image}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: ticker
spec:
  components:
    - name: hello
      image: {v1}
{missing}  service:
    name: ticker
    image: {ticker}
    maxRestarts: 1
    env: [{{name: EXIT_AFTER_TICKS, value: \"2\"}}]
  hostInterfaces:
    - namespace: wasi
      package: http
      interfaces: [incoming-handler]
      config: {{host: ticker.localhost}}
"
    )
}
