#!/usr/bin/env bash
# Builds every guest in examples/components into a component at examples/build/<name>.wasm,
# plus hello-http-v2.wasm (hello-http with the `v2` feature), greet-composed.wasm (a `wac plug`
# composition) and the JavaScript and Python hellos (scripts/build-js-example.sh,
# scripts/build-python-example.sh).
#
# No rustup wasm target is needed: Debian's rustc (rustc-web) builds std for
# wasm32-unknown-unknown from its own source (rust-web-src, -Zbuild-std), wasm-ld-19 (lld-19)
# links, and `xtask componentize` wraps each core module into a component. Incremental: cargo
# skips up-to-date crates and a component is only re-encoded when its core module changed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
examples=$root/examples
out=$examples/build
# CI points this at a cache outside the clone so std is not rebuilt for every run.
target=${WEFT_GUEST_TARGET_DIR:-$examples/target}
# cdylib outputs carry no hash in their file names, so the v2 feature set gets its own target
# dir; sharing one would relink and rewrite both variants on every run.
v2_target=$target/v2

# cargo for wasm32 with Debian's rustc; RUSTC_BOOTSTRAP unlocks -Zbuild-std on it. Panics
# abort immediately (a Wasm trap) without the formatting machinery, which halves the size.
guest_cargo() {
  env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-19 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort" \
    cargo build --manifest-path "$examples/Cargo.toml" --release \
    --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort "$@"
}

# Re-encodes <core> as component <name> if the core module (or xtask) is newer.
componentize() {
  local core=$1 component=$out/$2.wasm
  if [[ ! -e $component || $core -nt $component || $xtask -nt $component ]]; then
    "$xtask" componentize "$core" "$component"
  fi
  built+=("$component")
}

"$root/scripts/ensure-packages.sh"

cargo build --quiet --release -p xtask --manifest-path "$root/Cargo.toml"
xtask=${CARGO_TARGET_DIR:-$root/target}/release/xtask

guest_cargo --workspace --target-dir "$target"
guest_cargo -p hello-http --features v2 --target-dir "$v2_target"

mkdir -p "$out"
built=()
for dir in "$examples"/components/*/; do
  name=$(basename "$dir")
  componentize "$target/wasm32-unknown-unknown/release/${name//-/_}.wasm" "$name"
done
componentize "$v2_target/wasm32-unknown-unknown/release/hello_http.wasm" hello-http-v2
# Hand-written components (examples/wat): fixtures Rust cannot express.
for wat in "$examples"/wat/*.wat; do
  name=$(basename "$wat" .wat)
  if [[ ! -e $out/$name.wasm || $wat -nt $out/$name.wasm || $xtask -nt $out/$name.wasm ]]; then
    "$xtask" wat "$wat" "$out/$name.wasm"
  fi
  built+=("$out/$name.wasm")
done

# A composition made by `wac` (crates.io, the Bytecode Alliance's composer): greeter plugged
# into greet-http's import, one component that needs no linking at run time.
wac_version=0.12.0
wac=$HOME/.cache/weft/tools/wac-cli-$wac_version/bin/wac
if [[ ! -x $wac ]]; then
  echo "installing wac-cli $wac_version (once)..." >&2
  env -u CARGO_TARGET_DIR cargo install --locked --quiet --no-default-features \
    "wac-cli@$wac_version" --root "${wac%/bin/wac}"
fi
composed=$out/greet-composed.wasm
if [[ ! -e $composed || $out/greet-http.wasm -nt $composed || $out/greeter.wasm -nt $composed ]]; then
  "$wac" plug "$out/greet-http.wasm" --plug "$out/greeter.wasm" -o "$composed"
fi
built+=("$composed")

# Other languages' toolchains: JavaScript (componentize-js, npm) and Python (componentize-py, PyPI).
"$root/scripts/build-js-example.sh"
"$root/scripts/build-python-example.sh"
built+=("$out/hello-js.wasm" "$out/hello-python.wasm")

echo "components in ${out#"$root"/}:"
for component in "${built[@]}"; do
  printf '  %-24s %7d bytes\n' "$(basename "$component")" "$(stat -c %s "$component")"
done
