#!/usr/bin/env bash
# Builds Weft's container images without Docker: the operator and host-agent release binaries,
# each in a minimal root filesystem (the binary, the shared libraries ldd names, CA
# certificates, a passwd entry for uid 65532, no shell; see xtask/src/image.rs), as OCI image
# layouts under <target>/images/<name>, and pushes them with oras when asked.
#
#   scripts/build-images.sh                          build only
#   scripts/build-images.sh --push 127.0.0.1:5000    also push <registry>/weft/<name>:<tag>
#   TAG=dev scripts/build-images.sh ...              another tag (default: the chart's appVersion)
#
# With Docker, docker/*.Dockerfile build the same images: they run `xtask rootfs`, the same
# root filesystem, into `FROM scratch`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
registry=
if [[ ${1:-} == --push ]]; then
  registry=${2:?--push needs a registry, e.g. 127.0.0.1:5000}
fi
tag=${TAG:-$(awk -F'"' '/^appVersion:/ { print $2 }' charts/weft/Chart.yaml)}
target=${CARGO_TARGET_DIR:-$root/target}

# The same packages as the tests' release builds (weft_e2e::process::release_bin): one set of
# dependency features, built once.
cargo build --quiet --release --locked -p operator -p host-agent -p xtask
mkdir -p "$target/images"
for name in operator host-agent; do
  layout=$target/images/$name
  rm -rf "$layout"
  digest=$("$target/release/xtask" oci-image "$target/release/$name" "$tag" "$layout")
  echo "built weft/$name:$tag ($digest) in $layout"
  if [[ -n $registry ]]; then
    oras=${WEFT_ORAS:-$(scripts/ensure-tools.sh --env | awk -F= '/^export WEFT_ORAS=/ { print $2 }')}
    "$oras" cp --from-oci-layout "$layout:$tag" "$registry/weft/$name:$tag" --to-plain-http >/dev/null
    echo "pushed $registry/weft/$name:$tag"
  fi
done
