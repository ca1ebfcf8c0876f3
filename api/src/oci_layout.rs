//! The Wasm OCI artifact layout (CNCF TAG Runtime) as a host reads what a registry serves: the
//! one layer holding the component and, in an image index, the entry for it. A registry is
//! tenant input (a tenant names it), so these are fuzzed (`fuzz_targets`).

use oci_client::config::Architecture;
use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageManifest};

pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// What older tools push (`wasm-to-oci`).
pub const LEGACY_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";

/// The largest component a host accepts, so a hostile manifest cannot exhaust memory.
pub const MAX_COMPONENT_BYTES: i64 = 512 * 1024 * 1024;

/// The one layer holding the component, or what is wrong with the manifest.
pub fn wasm_layer(manifest: &OciImageManifest) -> Result<&OciDescriptor, String> {
    let wasm: Vec<&OciDescriptor> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == LAYER_MEDIA_TYPE || l.media_type == LEGACY_LAYER_MEDIA_TYPE)
        .collect();
    match wasm.as_slice() {
        [layer] if !(0..=MAX_COMPONENT_BYTES).contains(&layer.size) => Err(format!(
            "its layer is {} bytes, more than the {MAX_COMPONENT_BYTES} a component may be",
            layer.size
        )),
        [layer] => Ok(layer),
        [] => {
            let types: Vec<&str> = manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect();
            Err(if types.is_empty() {
                "it has no layers".into()
            } else {
                format!(
                    "expected one {LAYER_MEDIA_TYPE} layer, found {}",
                    types.join(", ")
                )
            })
        }
        _ => Err(format!(
            "{} {LAYER_MEDIA_TYPE} layers; a component image has exactly one",
            wasm.len()
        )),
    }
}

/// In an image index, the entry for the `wasm` architecture, or the only entry.
pub fn wasm_platform(entries: &[ImageIndexEntry]) -> Option<String> {
    entries
        .iter()
        .find(|e| {
            e.platform
                .as_ref()
                .is_some_and(|p| p.architecture == Architecture::Wasm)
        })
        .or(match entries {
            [only] => Some(only),
            _ => None,
        })
        .map(|e| e.digest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layers: &[(&str, i64)]) -> OciImageManifest {
        OciImageManifest {
            layers: layers
                .iter()
                .map(|(t, size)| OciDescriptor {
                    media_type: t.to_string(),
                    size: *size,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn picks_the_one_wasm_layer() {
        assert!(wasm_layer(&manifest(&[(LAYER_MEDIA_TYPE, 10)])).is_ok());
        assert!(wasm_layer(&manifest(&[(LEGACY_LAYER_MEDIA_TYPE, 10)])).is_ok());
        let err = wasm_layer(&manifest(&[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            10,
        )]))
        .unwrap_err();
        assert!(err.contains("tar+gzip"), "{err}");
        let two = [(LAYER_MEDIA_TYPE, 10), (LAYER_MEDIA_TYPE, 10)];
        assert!(wasm_layer(&manifest(&two)).is_err());
        assert!(wasm_layer(&manifest(&[])).is_err());
        // A size a registry made up, too big or negative, is refused before any download.
        for size in [MAX_COMPONENT_BYTES + 1, -1] {
            assert!(wasm_layer(&manifest(&[(LAYER_MEDIA_TYPE, size)])).is_err());
        }
    }
}
