//! What a component imports and exports, read from its embedded WIT without compiling it.

use wit_component::DecodedWasm;
use wit_parser::{Resolve, WorldItem, WorldKey};

use super::layout::ComponentWorld;

/// The component's imports and exports, as `ns:pkg/iface@version` (or a bare function name).
pub fn world_of(wasm: &[u8]) -> Result<ComponentWorld, String> {
    let decoded = wit_component::decode(wasm).map_err(|e| format!("{e:#}"))?;
    let DecodedWasm::Component(resolve, world) = decoded else {
        return Err("a WIT package, not a component".into());
    };
    let world = &resolve.worlds[world];
    Ok(ComponentWorld {
        imports: names(&resolve, world.imports.iter()),
        exports: names(&resolve, world.exports.iter()),
    })
}

fn names<'a>(
    resolve: &Resolve,
    items: impl Iterator<Item = (&'a WorldKey, &'a WorldItem)>,
) -> Vec<String> {
    items
        .filter_map(|(key, item)| name(resolve, key, item))
        .collect()
}

fn name(resolve: &Resolve, key: &WorldKey, item: &WorldItem) -> Option<String> {
    match item {
        WorldItem::Interface { id, .. } => Some(
            resolve
                .id_of(*id)
                .unwrap_or_else(|| resolve.name_world_key(key)),
        ),
        WorldItem::Function(f) => Some(f.name.clone()),
        WorldItem::Type { .. } => None,
    }
}
