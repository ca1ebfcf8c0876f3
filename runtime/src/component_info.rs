//! What a component really imports and exports, read from the binary. Used to bind plugins,
//! link siblings, and report in status.

use wasmtime::component::Component;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentInfo {
    /// `sha256:<hex>` of the component's bytes.
    pub digest: String,
    /// Imported instance names, e.g. `wasi:http/types@0.2.0`.
    pub imports: Vec<String>,
    /// Exported instance names, e.g. `wasi:http/incoming-handler@0.2.0`.
    pub exports: Vec<String>,
}

impl ComponentInfo {
    pub(crate) fn read(engine: &wasmtime::Engine, component: &Component, digest: String) -> Self {
        let ty = component.component_type();
        Self {
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
