//! Registries a tenant controls: a manifest naming another registry's private layer, addresses
//! where other tenants and the host live, and error bodies meant for status.

use super::*;

/// What a fake registry answers to one request: status line, body, content type, extra headers.
type FakeReply = (&'static str, Vec<u8>, &'static str, String);

/// A registry a tenant controls, answering `reply(method, path)`; its address and how many
/// connections it has had.
fn fake_registry(
    bind: &str,
    reply: impl Fn(&str, &str) -> FakeReply + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let (reply, counted) = (Arc::new(reply), connections.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            let reply = reply.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let path = parts.next().unwrap_or("").to_string();
                    // The rest of the head.
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                    }
                    let (status, body, kind, headers) = reply(&method, &path);
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n{headers}Content-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    if method != "HEAD" {
                        let _ = stream.write_all(&body);
                    }
                }
            });
        }
    });
    (addr, connections)
}

/// A registry a tenant controls that serves one manifest (copied from elsewhere, naming layers it
/// never had) and no blobs: what an attacker needs to borrow another tenant's cached layer.
fn manifest_only_registry(manifest: Vec<u8>) -> String {
    let digest = weft_runtime::sha256(&manifest);
    let header = format!("Docker-Content-Digest: {digest}\r\n");
    fake_registry("127.0.0.1:0", move |_, path| {
        if path == "/v2/" {
            ("200 OK", Vec::new(), "application/json", String::new())
        } else if path.contains("/manifests/") {
            (
                "200 OK",
                manifest.clone(),
                "application/vnd.oci.image.manifest.v1+json",
                header.clone(),
            )
        } else {
            let body = b"{\"errors\":[{\"code\":\"BLOB_UNKNOWN\"}]}".to_vec();
            ("404 Not Found", body, "application/json", String::new())
        }
    })
    .0
}

/// Tenant A's private layer is on the host. Tenant B's own registry serves a manifest naming
/// that layer and never the layer itself: B does not get to run A's code (nor learn that the
/// host has it); A's registry still serves A.
#[test]
fn a_layer_stored_for_one_registry_is_not_lent_to_a_manifest_from_another() {
    let private = Registry::with_user("weft", "s3cret-pass");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let good = docker_config(dir.path(), &private.addr, "weft", "s3cret-pass");
    let image = format!("{}:1.0", private.image("private/hello"));
    push(&example_wasm("hello-http"), &image, Some(&good));
    let owner = agent()
        .manifest(workload(dir.path(), "owner", &[&image], ""))
        .image_dir(&store)
        .registry_config(&good)
        .start();
    assert_eq!(owner.get("/", None), HELLO);
    drop(owner);

    // The attacker copies the manifest (its layer digest is no secret) into a registry of its
    // own, which has no blobs.
    let manifest = Command::new("curl")
        .args([
            "-sSf",
            "-u",
            "weft:s3cret-pass",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &format!("http://{}/v2/private/hello/manifests/1.0", private.addr),
        ])
        .output()
        .unwrap();
    assert!(manifest.status.success(), "{manifest:?}");
    let evil = manifest_only_registry(manifest.stdout);
    let borrowed = format!("{evil}/evil/hello:1.0");
    let attacker = agent()
        .manifest(workload(dir.path(), "borrowed", &[&borrowed], ""))
        .image_dir(&store)
        .spawn();
    let status = wait_for_pull_failure(&attacker, "borrowed", "which its registry does not have");
    assert_eq!(status["state"], "Waiting", "it never ran: {status}");
    assert_eq!(attacker.metric("weft_blob_downloads_total"), 0.0);
}

/// A manifest naming one Wasm layer, `wasm`.
fn manifest_of(wasm: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.wasm.config.v0+json",
            "digest": weft_runtime::sha256(b"{}"),
            "size": 2
        },
        "layers": [{
            "mediaType": "application/wasm",
            "digest": weft_runtime::sha256(wasm),
            "size": wasm.len()
        }]
    }))
    .unwrap()
}

/// An image reference chooses where the agent connects: a tenant names the host's loopback (or
/// a cluster address) to reach listeners that are not registries. Pulls go only to addresses
/// the host allows, redirects included, and the status says why.
#[test]
fn pulls_go_only_to_registry_addresses_the_host_allows() {
    let dir = tempfile::tempdir().unwrap();
    // A listener that is no registry of the host's: another tenant's, or the agent's own port.
    let (target, reached) = fake_registry("127.0.0.2:0", |_, _| {
        ("200 OK", b"secret".to_vec(), "text/plain", String::new())
    });
    // A registry the host allows, which redirects its blob to that listener.
    let wasm = std::fs::read(example_wasm("hello-http")).unwrap();
    let manifest = manifest_of(&wasm);
    let digest = weft_runtime::sha256(&manifest);
    let location = format!("Location: http://{target}/blob\r\n");
    let (allowed, asked) = fake_registry("127.0.0.1:0", move |_, path| {
        if path.contains("/manifests/") {
            let header = format!("Docker-Content-Digest: {digest}\r\n");
            (
                "200 OK",
                manifest.clone(),
                "application/vnd.oci.image.manifest.v1+json",
                header,
            )
        } else if path.contains("/blobs/") {
            (
                "307 Temporary Redirect",
                Vec::new(),
                "text/plain",
                location.clone(),
            )
        } else {
            ("200 OK", Vec::new(), "application/json", String::new())
        }
    });
    let direct = format!("{target}/tenant/hello:1");
    let redirected = format!("{allowed}/tenant/hello:1");
    let host = agent()
        .manifest(workload(dir.path(), "direct", &[&direct], ""))
        .manifest(workload(dir.path(), "redirected", &[&redirected], ""))
        .image_dir(&dir.path().join("store"))
        .arg("--registry-allow=127.0.0.1/32")
        .spawn();
    // In status, the reason (the registry's address was refused), not a connection error.
    wait_for_pull_failure(
        &host,
        "direct",
        "is refused: 127.0.0.2 is a loopback address; the host pulls from there only if its operator allows it (--registry-allow)",
    );
    host.wait("the allowed registry to be asked", |_| {
        asked.load(Ordering::SeqCst) > 0
    });
    host.wait("the redirected pull to fail", |a| {
        component_status(a, "redirected")["state"] == "Waiting"
            && component_status(a, "redirected")["message"].is_string()
    });
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the agent connected to a refused address"
    );
    assert!(host.logs().contains("registry connection refused"));
}

/// What a registry says is the registry's, chosen by whoever runs it: status shows the code.
#[test]
fn a_registry_error_shows_its_code_not_its_words() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = fake_registry("127.0.0.1:0", |_, path| {
        if path.starts_with("/v2/enveloped/") {
            let body =
                br#"{"errors":[{"code":"UNSUPPORTED","message":"<script>hunter2</script>"}]}"#;
            (
                "400 Bad Request",
                body.to_vec(),
                "application/json",
                String::new(),
            )
        } else if path.starts_with("/v2/plain/") {
            let body = "hunter2 internal stack trace\n".repeat(100).into_bytes();
            (
                "500 Internal Server Error",
                body,
                "text/plain",
                String::new(),
            )
        } else {
            ("200 OK", Vec::new(), "application/json", String::new())
        }
    });
    let enveloped = format!("{registry}/enveloped/x:1");
    let plain = format!("{registry}/plain/x:1");
    let host = agent()
        .manifest(workload(dir.path(), "enveloped", &[&enveloped], ""))
        .manifest(workload(dir.path(), "plain", &[&plain], ""))
        .image_dir(&dir.path().join("store"))
        .spawn();
    let status = wait_for_pull_failure(&host, "enveloped", "Unsupported");
    assert!(!status.to_string().contains("hunter2"), "{status}");
    let status = wait_for_pull_failure(&host, "plain", "HTTP 500");
    assert!(!status.to_string().contains("hunter2"), "{status}");
}
