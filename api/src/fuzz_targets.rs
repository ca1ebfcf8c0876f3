//! The bodies of the fuzz targets in `fuzz/` (`make fuzz`), kept here so that `make test`
//! replays their corpora and every crash found (`api/tests/fuzz_corpus.rs`) on the stable
//! toolchain, without libFuzzer. Each takes what a tenant writes and must never panic.

use crate::hostnames::{HostnameGrants, normalize};
use crate::{WitInterface, manifest, parse_duration, parse_memory};

/// A target: what it does with one input.
pub type Target = fn(&[u8]);

/// Every target, by the name of its directory under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("quantity", quantity),
    ("hostname", hostname),
    ("wit_interface", wit_interface),
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
