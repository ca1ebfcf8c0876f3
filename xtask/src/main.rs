//! Build helpers for the guest examples (see `scripts/build-examples.sh`).
//!
//! - `xtask componentize <core.wasm> <out.wasm>`: wraps a core module that carries
//!   wit-bindgen's `component-type` custom sections into a validated component.
//! - `xtask wat <component.wat> <out.wasm>`: assembles a hand-written component (fixtures that
//!   Rust cannot express, such as several linear memories).
//! - `xtask wit <component.wasm>`: prints the component's world (its imports and exports).
//! - `xtask oci-image <binary> <tag> <dir>`: a container image of one of Weft's binaries, as an
//!   OCI image layout (see `image.rs`); `xtask rootfs <binary> <dir>`: its root filesystem.

mod image;

use std::{env, fs, path::Path};

use anyhow::{Context, Result, bail};
use wit_component::{ComponentEncoder, WitPrinter};

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["componentize", core, out] => componentize(Path::new(core), Path::new(out)),
        ["wat", text, out] => assemble(Path::new(text), Path::new(out)),
        ["wit", component] => print_wit(Path::new(component)),
        ["oci-image", binary, tag, out] => image::oci_image(Path::new(binary), tag, Path::new(out)),
        ["rootfs", binary, out] => image::rootfs(Path::new(binary), Path::new(out)),
        _ => bail!(
            "usage: xtask componentize <core.wasm> <out.wasm> | wat <in.wat> <out.wasm> | wit <component.wasm> | oci-image <binary> <tag> <dir> | rootfs <binary> <dir>"
        ),
    }
}

fn componentize(core: &Path, out: &Path) -> Result<()> {
    let module = fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let component = ComponentEncoder::default()
        .module(&module)
        .with_context(|| format!("decoding component-type metadata of {}", core.display()))?
        .validate(true)
        .encode()
        .with_context(|| format!("encoding {} as a component", core.display()))?;
    fs::write(out, component).with_context(|| format!("writing {}", out.display()))
}

fn assemble(text: &Path, out: &Path) -> Result<()> {
    let wasm = wat::parse_file(text).with_context(|| format!("assembling {}", text.display()))?;
    fs::write(out, wasm).with_context(|| format!("writing {}", out.display()))
}

fn print_wit(path: &Path) -> Result<()> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let decoded =
        wit_component::decode(&bytes).with_context(|| format!("decoding {}", path.display()))?;
    // Only the component's own package (its world); the WASI packages it refers to are
    // well known and would bury the interesting part.
    let mut printer = WitPrinter::default();
    printer.emit_docs(false);
    printer.print(decoded.resolve(), decoded.package(), &[])?;
    println!("{}", printer.output);
    Ok(())
}
