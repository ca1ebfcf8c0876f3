#!/usr/bin/env bash
# Builds the real third-party servers and clients the tests run against, from the Go module
# proxy, once per version, into ~/.cache/weft/tools/<name>-<version>/bin.
#
#   scripts/ensure-tools.sh            build whatever is missing, print nothing else
#   scripts/ensure-tools.sh --env      also print `export WEFT_<TOOL>=/path` lines
#
# Tools: registry (CNCF distribution, an OCI registry) and oras (an OCI client no one here wrote).
set -euo pipefail

cache=${WEFT_TOOLS_DIR:-$HOME/.cache/weft/tools}

# name  go-package  version  binary
tools=(
  "registry github.com/distribution/distribution/v3/cmd/registry v3.0.0 registry"
  "oras oras.land/oras/cmd/oras v1.2.3 oras"
)

print_env=false
[[ ${1:-} == --env ]] && print_env=true

for entry in "${tools[@]}"; do
  read -r name pkg version bin <<<"$entry"
  dir="$cache/$name-$version"
  if [[ ! -x $dir/bin/$bin ]]; then
    echo "ensure-tools: building $name $version (once; cached in $dir)" >&2
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.$name-XXXXXX")
    # A throwaway module that requires the tool: `go install pkg@version` would also list every
    # version of the module, which the module proxy refuses for some (oras).
    (
      cd "$tmp"
      go mod init "weft.tools/$name" >/dev/null 2>&1
      GOFLAGS=-buildvcs=false go get "$pkg@$version" >&2
      CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o "$tmp/bin/$bin" "$pkg" >&2
    )
    # Renamed into place only when built: a half-built tool never looks present.
    rm -rf "$dir"
    mkdir -p "$dir"
    mv "$tmp/bin" "$dir/bin"
    rm -rf "$tmp"
  fi
  if $print_env; then
    echo "export WEFT_${name^^}=$dir/bin/$bin"
  fi
done
