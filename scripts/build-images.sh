#!/usr/bin/env bash
# Builds Weft's container images without Docker: the operator and host-agent release binaries,
# each in a minimal root filesystem (the binary, the shared libraries ldd names, CA
# certificates, a passwd entry for uid 65532, no shell; see xtask/src/image.rs), as OCI image
# layouts under <target>/images/<name>, and pushes them with oras when asked.
#
#   scripts/build-images.sh                          build only
#   scripts/build-images.sh --push 127.0.0.1:5000    also push <registry>/weft/<name>:<tag>
#   TAG=dev scripts/build-images.sh ...              another tag (default: the chart's appVersion)
#   PROFILE=dev scripts/build-images.sh ...          the debug binaries (the tests' and dev-cluster's:
#                                                    what `cargo test` already built, not a second,
#                                                    release build of Wasmtime)
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

profile=${PROFILE:-release}
out=$target/$([[ $profile == dev ]] && echo debug || echo "$profile")

if [[ $profile == dev ]]; then
  # The debug binaries as `cargo test` built them (like weft_e2e::process::workspace_bin):
  # `cargo build -p` of two packages would unify their dependencies' features differently and
  # rebuild them.
  for name in operator host-agent; do
    [[ -x $out/$name ]] || cargo build --quiet --locked -p "$name"
  done
else
  cargo build --quiet --locked --profile "$profile" -p operator -p host-agent
fi
# xtask in release, as scripts/build-examples.sh builds it: a debug one hashes a layer slowly.
cargo build --quiet --locked --release -p xtask
mkdir -p "$target/images"
for name in operator host-agent; do
  layout=$target/images/$name
  rm -rf "$layout"
  digest=$("$target/release/xtask" oci-image "$out/$name" "$tag" "$layout")
  echo "built weft/$name:$tag ($digest) in $layout"
  if [[ -n $registry ]]; then
    oras=${WEFT_ORAS:-$(scripts/ensure-tools.sh --env | awk -F= '/^export WEFT_ORAS=/ { print $2 }')}
    "$oras" cp --from-oci-layout "$layout:$tag" "$registry/weft/$name:$tag" --to-plain-http >/dev/null
    echo "pushed $registry/weft/$name:$tag"
  fi
done
