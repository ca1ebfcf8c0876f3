#!/usr/bin/env bash
# Pull time and first-request latency of a component run by digest from a local registry, with
# an empty host store (uncached) and with the digest already on the host (cached), next to
# `oras pull` of the same artifact as the reference. Not part of `make test`.
#
#   scripts/bench-pull.sh [rounds]       (default 5; medians are reported)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}

eval "$(scripts/ensure-tools.sh --env)"
cargo build --quiet --release -p host-agent
bin=${CARGO_TARGET_DIR:-target}/release/host-agent
wasm=examples/build/hello-http.wasm
[[ -f $wasm ]] || scripts/build-examples.sh

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

reg_port=$(free_port)
cat >"$work/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$reg_port}
EOF
"$WEFT_REGISTRY" serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
until curl -fs -o /dev/null "http://127.0.0.1:$reg_port/v2/"; do sleep 0.05; done

ref=127.0.0.1:$reg_port/bench/hello
digest=$("$bin" push "$wasm" "$ref:1" | sed -n 's/^Digest: //p')
cat >"$work/hello.yaml" <<EOF
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: hello}
spec:
  components:
    - name: hello
      image: $ref@$digest
EOF

# One host-agent start: prints "<pull seconds> <start-to-serving seconds> <first request seconds>".
measure() {
  local store=$1 http admin out pid t0 t1
  http=$(free_port) admin=$(free_port) out=$work/agent.out
  t0=$(now)
  "$bin" run "$work/hello.yaml" --listen "127.0.0.1:$http" --admin-listen "127.0.0.1:$admin" \
    --image-dir "$store" --cache-dir "$store/compiled" --registry-config "$work/no-credentials.json" \
    >"$out" 2>"$work/agent.log" &
  pid=$!
  until grep -q '^Serving' "$out" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/agent.log" >&2; exit 1; }
    sleep 0.005
  done
  t1=$(now)
  local first
  first=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$http/")
  local pull
  pull=$(curl -s "http://127.0.0.1:$admin/metrics" | awk '/^weft_image_pull_duration_seconds_sum/ { print $2 }')
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$pull $(echo "$t1 - $t0" | bc -l) $first"
}

: >"$work/uncached" && : >"$work/cached" && : >"$work/oras"
for ((i = 0; i < rounds; i++)); do
  rm -rf "$work/store"
  measure "$work/store" >>"$work/uncached"
  measure "$work/store" >>"$work/cached"
  rm -rf "$work/oras-out"
  t0=$(now)
  "$WEFT_ORAS" pull --plain-http -o "$work/oras-out" "$ref@$digest" >/dev/null
  echo "$(echo "$(now) - $t0" | bc -l)" >>"$work/oras"
done

col() { awk -v c="$1" '{ print $c }' "$2" | median; }
ms() { printf '%.2f ms' "$(echo "$1 * 1000" | bc -l)"; }
echo "hello-http ($(stat -c %s "$wasm") bytes) by digest from a loopback registry; medians of $rounds rounds"
printf '%-10s pull %-12s start-to-serving %-12s first request %s\n' \
  uncached "$(ms "$(col 1 "$work/uncached")")" "$(ms "$(col 2 "$work/uncached")")" "$(ms "$(col 3 "$work/uncached")")"
printf '%-10s pull %-12s start-to-serving %-12s first request %s\n' \
  cached "$(ms "$(col 1 "$work/cached")")" "$(ms "$(col 2 "$work/cached")")" "$(ms "$(col 3 "$work/cached")")"
oras=$(median <"$work/oras")
echo "reference: oras pull of the same digest $(ms "$oras") (a whole process: start, resolve, download, write)"
printf 'ratio: host-agent uncached pull / oras pull = %.2f\n' "$(echo "$(col 1 "$work/uncached") / $oras" | bc -l)"
