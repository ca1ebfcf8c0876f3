//! The Wasm OCI artifact layout (CNCF TAG Runtime): an image manifest whose config is
//! `application/vnd.wasm.config.v0+json` and whose one layer is `application/wasm`. Pulling also
//! accepts what common tools push: `oras push x.wasm:application/wasm` (any config, one wasm
//! layer) and the older `application/vnd.wasm.content.layer.v1+wasm` layer.

use std::collections::BTreeMap;

use oci_client::client::{Config, ImageLayer};
use serde::{Deserialize, Serialize};

pub use weft_api::oci_layout::{
    CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, MAX_COMPONENT_BYTES, wasm_layer, wasm_platform,
};

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
