#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, if any is missing:
#   rustc-web, rust-web-src, lld-19  build the guest components (see examples/README.md)
#   curl                             the HTTP client of the end-to-end tests
#   wrk, bc                          the load generator and arithmetic of the benchmark
#   apache2-utils                    htpasswd, for the registry credential tests
#   openssl                          the API server's signing key in the end-to-end tests
#   redis-server                     the Redis the key-value tests run against
#   containerd, runc,                a real container runtime for the image tests (and the
#   containernetworking-plugins      node): Debian's, no Docker
#   gcc, libc6-dev                   the node's static sandbox ("pause") program
set -euo pipefail

pkgs=(rustc-web rust-web-src lld-19 curl wrk bc apache2-utils openssl redis-server containerd runc
  containernetworking-plugins gcc libc6-dev)
missing=()
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
((${#missing[@]})) || exit 0

sudo=()
[[ $(id -u) == 0 ]] || sudo=(sudo)
# Refresh the package lists only when apt does not know a package yet.
for pkg in "${missing[@]}"; do
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update
    break
  fi
done
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
