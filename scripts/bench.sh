#!/usr/bin/env bash
# Benchmark: hello-http served by `host-agent run` with a fresh instance per request and with a
# warm pool, by `wasmtime serve` (the reference) and by a native hyper server (`native-hello`, the
# machine's limit), with the same load generator (wrk), side by side in one run, alternating
# rounds so all see the same machine. Prints requests/s and p99 latency for each, Weft's ratios to
# both, its mean instantiation time per fresh request and its mean time in the guest per pooled
# request. Run on demand (`make bench`); not part of `make test`.
#
#   DURATION=10 CONNECTIONS=32 ROUNDS=3 scripts/bench.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
rounds=${ROUNDS:-3}
wasmtime_version=48.0.8
tools=$HOME/.cache/weft/tools/wasmtime-cli-$wasmtime_version
component=$root/examples/build/hello-http.wasm

"$root/scripts/ensure-packages.sh"
if [[ ! -x $tools/bin/wasmtime ]]; then
  echo "installing wasmtime-cli $wasmtime_version (once, into $tools)..."
  cargo install --locked "wasmtime-cli@$wasmtime_version" --root "$tools"
fi
cargo build --quiet --release -p host-agent -p weft-e2e --bin host-agent --bin native-hello \
  --manifest-path "$root/Cargo.toml"
host_agent=${CARGO_TARGET_DIR:-$root/target}/release/host-agent
native=${CARGO_TARGET_DIR:-$root/target}/release/native-hello

pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -f "${pooled:-}"
}
trap cleanup EXIT

wait_for() {
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "nothing answered at $1" >&2
  exit 1
}

RUST_LOG=warn "$host_agent" run "$root/examples/hello-http.yaml" \
  --listen 127.0.0.1:18081 --admin-listen 127.0.0.1:19091 >/dev/null 2>&1 &
pids+=($!)
# The same Workload with a warm pool as large as its concurrency (the default 8).
pooled=$(mktemp --suffix=.yaml -p "$root/examples")
sed 's|      image: build/hello-http.wasm|      image: build/hello-http.wasm\n      pool: {size: 8}|' \
  "$root/examples/hello-http.yaml" >"$pooled"
RUST_LOG=warn "$host_agent" run "$pooled" \
  --listen 127.0.0.1:18084 --admin-listen 127.0.0.1:19094 >/dev/null 2>&1 &
pids+=($!)
"$tools/bin/wasmtime" serve --addr 127.0.0.1:18082 "$component" >/dev/null 2>&1 &
pids+=($!)
"$native" 127.0.0.1:18083 &
pids+=($!)
wait_for http://127.0.0.1:18081/
wait_for http://127.0.0.1:18084/
wait_for http://127.0.0.1:18082/
wait_for http://127.0.0.1:18083/

# Prints "<requests/s> <p99 in ms>" for one wrk run.
load() {
  wrk -t2 -c"$connections" -d"${duration}s" --latency "$1" | awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec/ { rps = $2 }
    END { printf "%.0f %.3f\n", rps, p99 }'
}

declare -A rps p99 port=([weft]=18081 [pooled]=18084 [wasmtime]=18082 [native]=18083)
servers=(weft pooled wasmtime native)
for name in "${servers[@]}"; do rps[$name]=0; p99[$name]=0; done
for round in $(seq 1 "$rounds"); do
  for name in "${servers[@]}"; do
    read -r r p < <(load "http://127.0.0.1:${port[$name]}/")
    printf 'round %d  %-9s %8s req/s  p99 %7s ms\n' "$round" "$name" "$r" "$p"
    rps[$name]=$(echo "${rps[$name]} + $r" | bc -l)
    p99[$name]=$(echo "${p99[$name]} + $p" | bc -l)
  done
done

mean() { echo "scale=3; $1 / $rounds" | bc -l; }
weft_rps=$(mean "${rps[weft]}"); ref_rps=$(mean "${rps[wasmtime]}")
weft_p99=$(mean "${p99[weft]}"); ref_p99=$(mean "${p99[wasmtime]}")
native_rps=$(mean "${rps[native]}"); native_p99=$(mean "${p99[native]}")
pooled_rps=$(mean "${rps[pooled]}"); pooled_p99=$(mean "${p99[pooled]}")
# Mean of a histogram on an admin port, in microseconds.
histogram_mean() {
  curl -s "http://$1/metrics" | awk -v h="$2" '
    $1 ~ "^"h"_sum" { s += $2 }
    $1 ~ "^"h"_count" { c += $2 }
    END { if (c) printf "%.1f", s / c * 1e6; else print "n/a" }'
}
instantiation=$(histogram_mean 127.0.0.1:19091 weft_instantiation_duration_seconds)
fresh_guest=$(histogram_mean 127.0.0.1:19091 weft_invocation_duration_seconds)
pooled_guest=$(histogram_mean 127.0.0.1:19094 weft_invocation_duration_seconds)
pooled_made=$(curl -s http://127.0.0.1:19094/metrics | awk '/^weft_instantiation_duration_seconds_count/ { c += $2 } END { print c + 0 }')

echo
echo "hello-http, wrk -t2 -c$connections -d${duration}s, mean of $rounds rounds each:"
printf '  %-16s %10s req/s   p99 %8s ms\n' "host-agent run" "$weft_rps" "$weft_p99"
printf '  %-16s %10s req/s   p99 %8s ms\n' "  ...pooled" "$pooled_rps" "$pooled_p99"
printf '  %-16s %10s req/s   p99 %8s ms\n' "wasmtime serve" "$ref_rps" "$ref_p99"
printf '  %-16s %10s req/s   p99 %8s ms\n' "native hyper" "$native_rps" "$native_p99"
printf '  throughput ratio (weft / wasmtime): %.2fx\n' "$(echo "$weft_rps / $ref_rps" | bc -l)"
printf '  throughput ratio (weft / native):   %.2fx\n' "$(echo "$weft_rps / $native_rps" | bc -l)"
printf '  p99 ratio        (weft / wasmtime): %.2fx (lower is better)\n' "$(echo "$weft_p99 / $ref_p99" | bc -l)"
printf '  pooled ratio     (pooled / wasmtime): %.2fx\n' "$(echo "$pooled_rps / $ref_rps" | bc -l)"
printf '  pooled ratio     (pooled / native):   %.2fx\n' "$(echo "$pooled_rps / $native_rps" | bc -l)"
printf '  pooled ratio     (pooled / fresh):    %.2fx\n' "$(echo "$pooled_rps / $weft_rps" | bc -l)"
echo "  weft mean instantiation per fresh request: ${instantiation} us"
echo "  weft mean time per invocation: fresh ${fresh_guest} us, pooled ${pooled_guest} us (instances made by the pooled run: ${pooled_made})"
