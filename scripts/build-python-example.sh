#!/usr/bin/env bash
# Builds examples/build/hello-python.wasm (about 18 MB: CPython and the app) from
# examples/python/hello-http/app.py with componentize-py from PyPI, installed once into a venv
# under ~/.cache/weft/tools/componentize-py-<version>. Needs python3 with its venv module.
# Part of `make examples`. Rebuilds only when the app or the WIT changed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=0.25.1
venv=$HOME/.cache/weft/tools/componentize-py-$version
src=$root/examples/python
out=$root/examples/build/hello-python.wasm

if [[ ! -x $venv/bin/componentize-py ]]; then
  echo "installing componentize-py $version (once, into $venv)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "componentize-py==$version"
fi
if [[ -f $out && -z $(find "$src" -newer "$out" -type f -not -path '*/__pycache__/*') ]]; then
  exit 0
fi
mkdir -p "$(dirname "$out")"
cd "$src/hello-http"
"$venv/bin/componentize-py" --quiet -d "$src/wit" -w hello componentize app -o "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out" >&2
