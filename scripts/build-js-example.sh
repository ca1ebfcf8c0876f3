#!/usr/bin/env bash
# Builds examples/build/hello-js.wasm (about 13 MB: the StarlingMonkey JS engine, snapshotted
# with the app) from examples/js/hello-http/app.js with componentize-js from npm, installed
# once, at the versions examples/js/package-lock.json pins, under
# ~/.cache/weft/tools/componentize-js-<version>. Needs Node.js with npm on PATH (built and
# tested with Node.js 20 and npm 11). Rebuilds only when the app or the WIT changed.
#
# componentize-js is run directly rather than through `jco componentize`: jco 1.35 runs its own
# componentize-js 0.22, which cannot read the working directory under its WASI shim.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/examples/js
out=$root/examples/build/hello-js.wasm
version=$(sed -n 's/.*"@bytecodealliance\/componentize-js": "\(.*\)".*/\1/p' "$src/package.json" | head -1)
tools=$HOME/.cache/weft/tools/componentize-js-$version

if ! command -v npm >/dev/null; then
  echo "build-js-example.sh: needs Node.js with npm on PATH (tested with Node.js 20)" >&2
  exit 1
fi
# Keyed by the lock file too: a changed pin reinstalls.
if ! cmp -s "$src/package-lock.json" "$tools/package-lock.json" 2>/dev/null; then
  echo "installing componentize-js $version (once, into $tools)..." >&2
  rm -rf "$tools"
  mkdir -p "$tools"
  cp "$src/package.json" "$src/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --quiet --no-audit --no-fund --omit-lockfile-registry-resolved >/dev/null)
fi
if [[ -f $out && -z $(find "$src" "$root/examples/python/wit" -newer "$out" -type f -not -path '*/node_modules/*') ]]; then
  exit 0
fi

# The engine is built against WASI 0.2.10: the world names 0.2.10, and its deps are the 0.2.12
# WIT renamed, less what 0.2.12 added (`@since(version = 0.2.12)` items: wasi:cli's
# exit-with-code), which a 0.2.10 package cannot declare.
wit=$(mktemp -d)
trap 'rm -rf "$wit"' EXIT
cp "$src/wit/world.wit" "$wit/"
mkdir "$wit/deps"
for file in "$root"/examples/python/wit/deps/*.wit; do
  sed -e '/@since(version = 0\.2\.12)/,+1d' -e 's/@0\.2\.12/@0.2.10/g' "$file" >"$wit/deps/$(basename "$file")"
done

mkdir -p "$(dirname "$out")"
"$tools/node_modules/.bin/componentize-js" --wit "$wit" --world-name hello \
  --out "$out.tmp" "$src/hello-http/app.js" >&2
mv "$out.tmp" "$out"
echo "built $out" >&2
