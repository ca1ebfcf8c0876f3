//! The Wasm OCI artifact layout (CNCF TAG Runtime): an image manifest whose config is
//! `application/vnd.wasm.config.v0+json` and whose one layer is `application/wasm`. Pulling also
//! accepts what common tools push: `oras push x.wasm:application/wasm` (any config, one wasm
//! layer) and the older `application/vnd.wasm.content.layer.v1+wasm` layer.

use std::collections::BTreeMap;

use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::{Deserialize, Serialize};

use super::PullError;

pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
const LEGACY_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";

/// The largest component a host accepts, so a hostile manifest cannot exhaust memory.
pub const MAX_COMPONENT_BYTES: i64 = 512 * 1024 * 1024;

/// The one layer holding the component.
pub fn wasm_layer<'m>(
    manifest: &'m OciImageManifest,
    image: &str,
) -> Result<&'m OciDescriptor, PullError> {
    let wasm: Vec<&OciDescriptor> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == LAYER_MEDIA_TYPE || l.media_type == LEGACY_LAYER_MEDIA_TYPE)
        .collect();
    let wrong = |found: String| PullError::WrongMediaType {
        image: image.to_string(),
        found,
    };
    match wasm.as_slice() {
        [layer] if layer.size > MAX_COMPONENT_BYTES => Err(wrong(format!(
            "its layer is {} bytes, more than the {MAX_COMPONENT_BYTES} a component may be",
            layer.size
        ))),
        [layer] => Ok(layer),
        [] => {
            let types: Vec<&str> = manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect();
            Err(wrong(if types.is_empty() {
                "it has no layers".into()
            } else {
                format!(
                    "expected one {LAYER_MEDIA_TYPE} layer, found {}",
                    types.join(", ")
                )
            }))
        }
        _ => Err(wrong(format!(
            "{} {LAYER_MEDIA_TYPE} layers; a component image has exactly one",
            wasm.len()
        ))),
    }
}

/// The config blob of the layout: what the component is, readable without pulling the layer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    pub layer_digests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentWorld>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ComponentWorld {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// The layer and config to push for a component.
pub fn artifact(
    wasm: Vec<u8>,
    world: ComponentWorld,
) -> Result<(ImageLayer, Config, BTreeMap<String, String>), serde_json::Error> {
    let layer = ImageLayer::new(wasm, LAYER_MEDIA_TYPE.to_string(), None);
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let config = WasmConfig {
        created: created.clone(),
        author: None,
        architecture: "wasm".into(),
        os: "wasip2".into(),
        layer_digests: vec![layer.sha256_digest()],
        component: Some(world),
    };
    let config = Config::new(
        serde_json::to_vec(&config)?,
        CONFIG_MEDIA_TYPE.to_string(),
        None,
    );
    let annotations = BTreeMap::from([("org.opencontainers.image.created".to_string(), created)]);
    Ok((layer, config, annotations))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layers: &[&str]) -> OciImageManifest {
        OciImageManifest {
            layers: layers
                .iter()
                .map(|t| OciDescriptor {
                    media_type: t.to_string(),
                    size: 10,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn picks_the_one_wasm_layer() {
        assert!(wasm_layer(&manifest(&[LAYER_MEDIA_TYPE]), "i").is_ok());
        assert!(wasm_layer(&manifest(&[LEGACY_LAYER_MEDIA_TYPE]), "i").is_ok());
        let err = wasm_layer(
            &manifest(&["application/vnd.oci.image.layer.v1.tar+gzip"]),
            "i",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("wrong media type") && err.contains("tar+gzip"),
            "{err}"
        );
        assert!(wasm_layer(&manifest(&[LAYER_MEDIA_TYPE, LAYER_MEDIA_TYPE]), "i").is_err());
        assert!(wasm_layer(&manifest(&[]), "i").is_err());
    }
}
