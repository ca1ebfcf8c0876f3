#!/usr/bin/env bash
# Fuzzes every parser of tenant input with cargo-fuzz (libFuzzer) on the nightly toolchain, each
# target for FUZZ_SECONDS (default 60), growing fuzz/corpus/<target>/; crashes land in
# fuzz/artifacts/<target>/. Commit both: `make test` replays them (api/tests/fuzz_corpus.rs).
#
#   scripts/fuzz.sh                 every target
#   scripts/fuzz.sh manifest        one target
set -euo pipefail

version=0.13.2
cache=${WEFT_TOOLS_DIR:-$HOME/.cache/weft/tools}
dir="$cache/cargo-fuzz-$version"
if [[ ! -x $dir/bin/cargo-fuzz ]]; then
  echo "fuzz: installing cargo-fuzz $version (once; cached in $dir)" >&2
  cargo install --locked --quiet --root "$dir" cargo-fuzz --version "$version"
fi
export PATH="$dir/bin:$PATH"

cd "$(dirname "$0")/../fuzz"
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  echo "fuzz: $target for ${FUZZ_SECONDS:-60}s" >&2
  # Minimised new inputs go into the corpus; -max_len bounds a manifest at 64 KiB.
  cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="${FUZZ_SECONDS:-60}" -max_len=65536 \
    -artifact_prefix="artifacts/$target/"
done
