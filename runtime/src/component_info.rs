//! What a component really imports and exports, read from the binary. Used to bind plugins,
//! link siblings, and report in status.

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;
use weft_api::{WitInterface, version_compatible};

/// What a component imports and exports, read from its binary once per digest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentInfo {
    /// `sha256:<hex>` of the component's bytes.
    pub digest: String,
    /// Imported instance names, e.g. `wasi:http/types@0.2.0`.
    pub imports: Vec<String>,
    /// Exported instance names, e.g. `wasi:http/incoming-handler@0.2.0`.
    pub exports: Vec<String>,
    /// Whether it exports an `async` function (every WASI 0.3 world does): calls may then share
    /// an instance, up to `pool.maxConcurrency` at once.
    pub concurrent: bool,
}

impl ComponentInfo {
    pub(crate) fn read(engine: &wasmtime::Engine, component: &Component, digest: String) -> Self {
        let ty = component.component_type();
        let concurrent = ty.exports(engine).any(|(_, item)| match item.ty {
            ComponentItem::ComponentFunc(f) => f.async_(),
            ComponentItem::ComponentInstance(instance) => instance
                .exports(engine)
                .any(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(f) if f.async_())),
            _ => false,
        });
        Self {
            concurrent,
            digest,
            imports: ty
                .imports(engine)
                .map(|(name, _)| name.to_string())
                .collect(),
            exports: ty
                .exports(engine)
                .map(|(name, _)| name.to_string())
                .collect(),
        }
    }

    /// Whether the component imports an interface of `package` (`wasi:config`) at `version`
    /// (`0.2.0-draft`); plugins serving several versions link only the ones imported.
    pub fn imports_version(&self, package: &str, version: &str) -> bool {
        self.imports.iter().any(|i| {
            i.strip_prefix(package)
                .is_some_and(|rest| rest.starts_with('/') && rest.ends_with(&format!("@{version}")))
        })
    }

    /// Whether the component imports an interface of `package` (`wasi:http`) on the semver
    /// track of `version`: `0.3.0` matches `0.3.2` and not `0.2.6`. Plugins serving WASI 0.2
    /// and 0.3 link only the one a component imports.
    pub fn imports_track(&self, package: &str, version: &str) -> bool {
        let wanted = semver::Version::parse(version).ok();
        self.imports.iter().any(|import| {
            import.parse::<WitInterface>().is_ok_and(|i| {
                i.package_name() == package
                    && i.version.is_some()
                    && version_compatible(i.version.as_ref(), wanted.as_ref())
            })
        })
    }

    /// The export whose name is `interface` at any version (e.g. `wasi:cli/run`).
    pub fn export_of(&self, interface: &str) -> Option<&str> {
        self.exports
            .iter()
            .map(String::as_str)
            .find(|e| unversioned(e) == interface)
    }
}

/// `wasi:http/types@0.2.0` → `wasi:http/types`.
pub fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(n, _)| n)
}
