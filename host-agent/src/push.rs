//! `host-agent push <component.wasm> <reference>`: publishes a component in the Wasm OCI
//! artifact layout and prints its digest.

use std::path::PathBuf;

use anyhow::Context;
use oci_client::Reference;
use oci_client::manifest::OciImageManifest;

use crate::image::{self, layout};
use crate::registry_args::RegistryArgs;
use crate::run::BadInput;

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The component file.
    pub component: PathBuf,
    /// Where to push it: `registry/repository:tag`.
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn push(args: PushArgs) -> anyhow::Result<()> {
    let wasm = std::fs::read(&args.component)
        .with_context(|| format!("cannot read {}", args.component.display()))
        .map_err(BadInput)?;
    // Only components go out: a registry is no place to find out a file was a core module.
    let world = image::world_of(&wasm)
        .map_err(|e| anyhow::anyhow!("{} is not a component: {e}", args.component.display()))
        .map_err(BadInput)?;
    let reference: Reference = args
        .reference
        .parse()
        .with_context(|| format!("invalid reference {:?}", args.reference))
        .map_err(BadInput)?;
    let credentials = args.registry.credentials()?;
    let auth = credentials.auth_for(reference.registry());
    let client = image::client(
        reference.resolve_registry(),
        &args.registry.insecure_registries,
        None,
    );

    let size = wasm.len();
    let (layer, config, annotations) = layout::artifact(wasm, world)?;
    let layer_digest = layer.sha256_digest();
    let manifest =
        OciImageManifest::build(std::slice::from_ref(&layer), &config, Some(annotations));
    client
        .push(&reference, &[layer], config, &auth, Some(manifest))
        .await
        .with_context(|| format!("pushing {}", reference.whole()))?;
    // The registry's own digest of what it stored is the one to reference by.
    let digest = client
        .fetch_manifest_digest(&reference, &auth)
        .await
        .with_context(|| format!("reading back {}", reference.whole()))?;

    println!(
        "Pushed {} ({size} bytes, layer {layer_digest})",
        reference.whole()
    );
    println!("Digest: {digest}");
    println!(
        "Reference: {}/{}@{digest}",
        reference.registry(),
        reference.repository()
    );
    Ok(())
}
