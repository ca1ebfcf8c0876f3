//! The backends one plugin offers, by name, and the rule every plugin uses to pick one for a
//! `hostInterfaces` entry (`config.backend`, else the host's default).

use std::collections::BTreeMap;
use std::sync::Arc;

/// The backends one plugin offers by name, and the one entries get when they name none.
pub struct BackendSet<B: ?Sized> {
    /// The package the backends serve (`wasi:keyvalue`), for messages.
    package: &'static str,
    backends: BTreeMap<&'static str, Arc<B>>,
    default: &'static str,
}

impl<B: ?Sized> BackendSet<B> {
    /// `backends` by name; `default` must be one of them.
    pub fn new(
        package: &'static str,
        backends: impl IntoIterator<Item = (&'static str, Arc<B>)>,
        default: &'static str,
    ) -> Self {
        let backends: BTreeMap<_, _> = backends.into_iter().collect();
        assert!(
            backends.contains_key(default),
            "the default {package} backend {default} is not offered"
        );
        Self {
            package,
            backends,
            default,
        }
    }

    /// The backend an entry's `config` picks, or why there is none.
    pub fn pick(&self, config: &BTreeMap<String, String>) -> Result<Arc<B>, String> {
        let name = config.get("backend").map_or(self.default, String::as_str);
        self.backends.get(name).cloned().ok_or_else(|| {
            format!(
                "{} backend {name:?} is not offered by this host (it offers {})",
                self.package,
                self.backends.keys().copied().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// Every name, the default first (as the Host's status lists them).
    pub fn names(&self) -> Vec<&'static str> {
        let others = self.backends.keys().copied().filter(|b| *b != self.default);
        std::iter::once(self.default).chain(others).collect()
    }
}
