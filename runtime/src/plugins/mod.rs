//! The plugins every Weft host has.

pub mod config;
pub mod http;
pub mod logging;
pub mod wasi;

use weft_api::WitInterface;

/// Parses an interface name written in the source; a typo here is a bug, not bad input.
pub(crate) fn iface(name: &str) -> WitInterface {
    name.parse()
        .unwrap_or_else(|e| panic!("built-in interface {name}: {e}"))
}
