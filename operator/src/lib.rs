//! The Weft operator as a library, so its binary and its tests share one implementation.

pub mod crdgen;
