//! The bodies of the fuzz targets in `fuzz/` (`make fuzz`), kept here so that `make test`
//! replays their corpora and every crash found (`api/tests/fuzz_corpus.rs`) on the stable
//! toolchain, without libFuzzer. Each takes what a tenant writes and must never panic.

use oci_client::Reference;
use oci_client::manifest::{OciImageIndex, OciImageManifest};

use crate::hostnames::{HostnameGrants, normalize};
use crate::{WitInterface, manifest, oci_layout, parse_duration, parse_memory, subjects};

/// A target: what it does with one input.
pub type Target = fn(&[u8]);

/// Every target, by the name of its directory under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("quantity", quantity),
    ("hostname", hostname),
    ("wit_interface", wit_interface),
    ("subject", subject),
    ("oci_reference", oci_reference),
    ("oci_manifest", oci_manifest),
];

/// A manifest file as `host-agent run` reads it: several documents, Workloads and
/// WorkloadDeployments.
pub fn manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = manifest::parse_all(text);
    }
}

/// `limits.memory`, `maxRequestBody`, `sizeLimit` and every duration field.
pub fn quantity(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_memory(text);
        let _ = parse_duration(text);
    }
}

/// A claimed host name or a Host header, against grants read from the same bytes.
pub fn hostname(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let host = normalize(text);
    let (grant, namespace) = text.split_once('\n').unwrap_or((text, "shop"));
    if let Ok(grants) = HostnameGrants::parse(&[grant]) {
        let _ = grants.refusal(namespace, &host);
    }
}

/// A WIT interface name (`wasi:keyvalue/store@0.2.0-draft`): what parses prints back to
/// itself.
pub fn wit_interface(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(interface) = text.parse::<WitInterface>() {
        let printed = interface.to_string();
        let again: WitInterface = printed.parse().unwrap_or_else(|e| {
            panic!("{text:?} printed as {printed:?}, which does not parse: {e}")
        });
        assert_eq!(again, interface, "{text:?} printed as {printed:?}");
    }
}

/// A messaging subject a guest publishes to or subscribes to (and a manifest's
/// `subscriptions`): what is valid matches itself, and `>` matches it.
pub fn subject(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for wildcards in [false, true] {
        if subjects::check(text, wildcards).is_ok() {
            assert!(
                subjects::matches(text, text),
                "{text:?} does not match itself"
            );
            assert!(subjects::matches(">", text), "> does not match {text:?}");
        }
    }
}

/// A component's `image`, the reference that chooses the registry a host connects to.
pub fn oci_reference(data: &[u8]) {
    if let Ok(reference) = std::str::from_utf8(data).map(str::parse::<Reference>)
        && let Ok(reference) = reference
    {
        let _ = (reference.whole(), reference.resolve_registry());
    }
}

/// What a registry answers for a manifest: an image manifest whose wasm layer a host picks, or
/// an index whose wasm entry it follows.
pub fn oci_manifest(data: &[u8]) {
    if let Ok(manifest) = serde_json::from_slice::<OciImageManifest>(data)
        && let Ok(layer) = oci_layout::wasm_layer(&manifest)
    {
        assert!((0..=oci_layout::MAX_COMPONENT_BYTES).contains(&layer.size));
    }
    if let Ok(index) = serde_json::from_slice::<OciImageIndex>(data) {
        let _ = oci_layout::wasm_platform(&index.manifests);
    }
}
