//! `host-agent inspect <reference-or-file>`: what a component imports and exports, its size
//! and digest, without running it.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use weft_api::PullPolicy;

use weft_runtime::EgressRules;

use crate::image::{self, ImageMetrics, ImageSource, ImageStore, Puller};
use crate::registry_args::RegistryArgs;
use crate::run::BadInput;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A component file, or an image reference (`registry/repository:tag` or `@sha256:…`).
    pub image: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inspection {
    image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_id: Option<String>,
    digest: String,
    size: usize,
    imports: Vec<String>,
    exports: Vec<String>,
}

pub async fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let bad = |e: anyhow::Error| BadInput(e);
    let (wasm, image_id) = if Path::new(&args.image).is_file() {
        (std::fs::read(&args.image)?.into(), None)
    } else {
        let ImageSource::Registry(reference) =
            ImageSource::parse(&args.image, None).map_err(|e| bad(e.into()))?
        else {
            unreachable!("no files without a base directory");
        };
        let store = Arc::new(ImageStore::open(args.registry.image_dir()?)?);
        let egress = EgressRules::with_own_addresses(Vec::new(), Vec::new());
        let puller = Puller::new(
            store,
            args.registry.insecure_registries.clone(),
            ImageMetrics::default(),
            args.registry.proxy(egress, true).await?,
        );
        let pulled = puller
            .pull(
                &reference,
                PullPolicy::Always,
                &args.registry.credentials()?,
                || {},
            )
            .await?;
        (pulled.wasm, Some(pulled.image_id))
    };
    let wasm: Arc<[u8]> = wasm;
    let world = image::world_of(&wasm)
        .map_err(|e| bad(anyhow::anyhow!("{} is not a component: {e}", args.image)))?;
    let inspection = Inspection {
        image: args.image,
        image_id,
        digest: image::sha256(&wasm),
        size: wasm.len(),
        imports: world.imports,
        exports: world.exports,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inspection)?);
        return Ok(());
    }
    println!("Image:    {}", inspection.image);
    if let Some(id) = &inspection.image_id {
        println!("Image ID: {id}");
    }
    println!("Digest:   {}", inspection.digest);
    println!("Size:     {} bytes", inspection.size);
    for (title, names) in [
        ("Imports", &inspection.imports),
        ("Exports", &inspection.exports),
    ] {
        println!("{title}:");
        for name in names {
            println!("  {name}");
        }
    }
    Ok(())
}
