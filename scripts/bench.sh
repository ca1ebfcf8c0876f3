#!/usr/bin/env bash
# Benchmark, side by side in one run with the same load generator (wrk), alternating rounds
# within each group so all servers of a group see the same machine:
#   hello    hello-http on `host-agent run` with a fresh instance per request and with a warm pool,
#            on `wasmtime serve` (the reference) and on a native hyper server (`native-hello`, the
#            machine's limit);
#   p3       hello-p3 (WASI 0.3) on `host-agent run` fresh, pooled (one call per instance) and
#            shared (16 calls per instance), next to `wasmtime serve` (which reuses a 0.3 instance
#            for up to 16 calls itself) and native hyper; then slow I/O: sleep-p3 awaiting a 10 ms
#            timer per request on one shared instance, next to `wasmtime serve` and native hyper
#            with the same sleep;
#   tracing  hello-http pooled on `host-agent run` with traces off, exported to a real Jaeger on
#            this machine with every request sampled, and with 1% sampled (OTEL_TRACES_SAMPLER);
#            Jaeger's own CPU competes for the same cores, as a collector sidecar's would;
#   toolchains  components from other toolchains: the greeting in JavaScript (componentize-js)
#            and in Python (componentize-py), and greet-http with greeter composed by `wac plug`:
#            fresh and pooled on `host-agent run`, next to `wasmtime serve`, and each one's start
#            to first response with an empty compile cache and with a warm one;
#   density  DENSITY (10000) hello Workloads, each its own host name, in one `host-agent run`:
#            the time until every one has answered once, and the process's memory (RSS) then;
#   cluster  on a real control plane with two host-agents (`bench-cluster`): apply to first
#            response, a 3-replica WorkloadDeployment to all answering and its rolling update,
#            CLUSTER_WORKLOADS (200) Workloads to Ready.
# Prints requests/s and p99 latency for each, every ratio, Weft's mean instantiation time per fresh
# request and its mean time per invocation, fresh and pooled. Run on demand (`make bench`); not
# part of `make test`.
#
#   DURATION=10 CONNECTIONS=32 ROUNDS=3 DENSITY=10000 \
#     BENCH_GROUPS="hello p3 tracing toolchains density cluster" \
#     scripts/bench.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
rounds=${ROUNDS:-3}
groups=${BENCH_GROUPS:-hello p3 tracing toolchains density cluster}
density=${DENSITY:-10000}
wasmtime_version=48.0.8
tools=$HOME/.cache/weft/tools/wasmtime-cli-$wasmtime_version
build=$root/examples/build

"$root/scripts/ensure-packages.sh"
if [[ ! -x $tools/bin/wasmtime ]]; then
  echo "installing wasmtime-cli $wasmtime_version (once, into $tools)..."
  cargo install --locked "wasmtime-cli@$wasmtime_version" --root "$tools"
fi
cargo build --quiet --release -p host-agent -p weft-e2e --bin host-agent --bin native-hello --bin jaeger \
  --manifest-path "$root/Cargo.toml"
host_agent=${CARGO_TARGET_DIR:-$root/target}/release/host-agent
native=${CARGO_TARGET_DIR:-$root/target}/release/native-hello
jaeger=${CARGO_TARGET_DIR:-$root/target}/release/jaeger

pids=()
manifests=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -f "${manifests[@]}"
}
trap cleanup EXIT

# <name> → its address, and the admin address of Weft's servers.
declare -A addr admin

wait_for() {
  for _ in $(seq 1 1200); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "nothing answered at $1" >&2
  exit 1
}

# weft <name> <port> <manifest> [pool]: `host-agent run` on a copy of <manifest> (next to it, so
# its `build/` paths resolve) with the component's pool removed, or set to <pool>; with the
# variables in weft_env. Throughput is measured on Cranelift's code: a large component's first
# seconds on baseline code are what first_response measures.
weft_env=()
weft() {
  local name=$1 port=$2 manifest=$3 pool=${4:-}
  local copy
  copy=$(mktemp --suffix=.yaml -p "$root/examples")
  manifests+=("$copy")
  grep -v '^      pool:' "$manifest" >"$copy"
  if [[ -n $pool ]]; then
    sed -i "s|^\(      image: build/.*\)$|\1\n      pool: $pool|" "$copy"
  fi
  env "${weft_env[@]}" RUST_LOG=warn "$host_agent" run "$copy" --listen "127.0.0.1:$port" \
    --compiler cranelift --admin-listen "127.0.0.1:$((port + 1000))" >/dev/null 2>&1 &
  pids+=($!)
  addr[$name]=127.0.0.1:$port
  admin[$name]=127.0.0.1:$((port + 1000))
}

# wasmtime <name> <port> <component> [flags]
wasmtime() {
  local name=$1 port=$2 component=$3
  shift 3
  "$tools/bin/wasmtime" serve "$@" --addr "127.0.0.1:$port" "$component" >/dev/null 2>&1 &
  pids+=($!)
  addr[$name]=127.0.0.1:$port
}

# Prints "<requests/s> <p99 in ms>" for one wrk run.
load() {
  wrk -t2 -c"$connections" -d"${duration}s" --latency "$1" | awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec/ { rps = $2 }
    END { printf "%.0f %.3f\n", rps, p99 }'
}

declare -A rps p99
# compare <server>...: alternated rounds on PATH (default /); leaves the means in rps[] and p99[].
compare() {
  local name r p path=${PATH_QUERY:-/}
  for name in "$@"; do wait_for "http://${addr[$name]}$path"; rps[$name]=0; p99[$name]=0; done
  for round in $(seq 1 "$rounds"); do
    for name in "$@"; do
      read -r r p < <(load "http://${addr[$name]}$path")
      printf 'round %d  %-16s %8s req/s  p99 %8s ms\n' "$round" "$name" "$r" "$p"
      rps[$name]=$(echo "${rps[$name]} + $r" | bc -l)
      p99[$name]=$(echo "${p99[$name]} + $p" | bc -l)
    done
  done
  for name in "$@"; do
    rps[$name]=$(echo "scale=1; ${rps[$name]} / $rounds" | bc -l)
    p99[$name]=$(echo "scale=3; ${p99[$name]} / $rounds" | bc -l)
  done
}

# Mean of a histogram on a Weft server's admin port, in microseconds.
histogram_mean() {
  curl -s "http://${admin[$1]}/metrics" | awk -v h="$2" '
    $1 ~ "^"h"_sum" { s += $2 }
    $1 ~ "^"h"_count" { c += $2 }
    END { if (c) printf "%.1f", s / c * 1e6; else print "n/a" }'
}
instances_made() {
  curl -s "http://${admin[$1]}/metrics" |
    awk '/^weft_instantiation_duration_seconds_count/ { c += $2 } END { print c + 0 }'
}
row() { printf '  %-22s %10s req/s   p99 %8s ms\n' "$1" "${rps[$2]}" "${p99[$2]}"; }
ratio() { printf '  %-38s %.2fx\n' "$1" "$(echo "${rps[$2]} / ${rps[$3]}" | bc -l)"; }
timing() {
  echo "  $2: instantiation per fresh request $(histogram_mean "$1" weft_instantiation_duration_seconds) us;" \
    "time per invocation $(histogram_mean "$1" weft_invocation_duration_seconds) us;" \
    "instances made $(instances_made "$1")"
}

# first_response <manifest> <host> <path> <cache dir> [flags]: seconds from starting
# `host-agent run` to its first 200 at <host><path>.
first_response() {
  local started pid
  started=$(date +%s.%N)
  RUST_LOG=warn "$host_agent" run "$1" --listen 127.0.0.1:18190 --admin-listen 127.0.0.1:19190 \
    --cache-dir "$4" "${@:5}" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 6000); do
    curl -sf -o /dev/null -H "Host: $2" "http://127.0.0.1:18190$3" && break
    sleep 0.01
  done
  echo "$(date +%s.%N) - $started" | bc -l
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

report=()
if [[ $groups == *hello* ]]; then
  weft hello-fresh 18081 "$root/examples/hello-http.yaml"
  weft hello-pooled 18084 "$root/examples/hello-http.yaml" "{size: 8}"
  wasmtime hello-wasmtime 18082 "$build/hello-http.wasm"
  "$native" 127.0.0.1:18083 &
  pids+=($!)
  addr[hello-native]=127.0.0.1:18083
  echo "== hello-http"
  compare hello-fresh hello-pooled hello-wasmtime hello-native
  report+=("$(
    echo "hello-http, wrk -t2 -c$connections -d${duration}s, mean of $rounds alternated rounds:"
    row "weft fresh" hello-fresh
    row "weft pooled (size 8)" hello-pooled
    row "wasmtime serve" hello-wasmtime
    row "native hyper" hello-native
    ratio "weft fresh / wasmtime serve:" hello-fresh hello-wasmtime
    ratio "weft pooled / wasmtime serve:" hello-pooled hello-wasmtime
    ratio "weft fresh / native:" hello-fresh hello-native
    ratio "weft pooled / native:" hello-pooled hello-native
    ratio "weft pooled / weft fresh:" hello-pooled hello-fresh
    timing hello-fresh fresh
    timing hello-pooled pooled
  )")
fi
if [[ $groups == *p3* ]]; then
  # Each Weft row next to `wasmtime serve` reusing instances the same way: not at all, one call
  # at a time, and up to 16 calls at once (its default for WASI 0.3).
  weft p3-fresh 18101 "$root/examples/hello-p3.yaml"
  weft p3-pooled 18104 "$root/examples/hello-p3.yaml" "{size: $connections}"
  weft p3-shared 18105 "$root/examples/hello-p3.yaml" "{size: 4, maxConcurrency: 16}"
  wasmtime p3-wasmtime-fresh 18106 "$build/hello-p3.wasm" --max-instance-reuse-count 1
  wasmtime p3-wasmtime-pooled 18107 "$build/hello-p3.wasm" --max-instance-concurrent-reuse-count 1
  wasmtime p3-wasmtime 18102 "$build/hello-p3.wasm"
  "$native" 127.0.0.1:18103 &
  pids+=($!)
  addr[p3-native]=127.0.0.1:18103
  echo "== hello-p3 (WASI 0.3)"
  compare p3-fresh p3-wasmtime-fresh p3-pooled p3-wasmtime-pooled p3-shared p3-wasmtime p3-native
  report+=("$(
    echo "hello-p3 (WASI 0.3), wrk -t2 -c$connections -d${duration}s, mean of $rounds alternated rounds:"
    row "weft fresh" p3-fresh
    row "wasmtime, no reuse" p3-wasmtime-fresh
    row "weft pooled (size $connections)" p3-pooled
    row "wasmtime, 1 at a time" p3-wasmtime-pooled
    row "weft shared (16/inst)" p3-shared
    row "wasmtime serve (16/inst)" p3-wasmtime
    row "native hyper" p3-native
    ratio "weft fresh / wasmtime no reuse:" p3-fresh p3-wasmtime-fresh
    ratio "weft pooled / wasmtime 1 at a time:" p3-pooled p3-wasmtime-pooled
    ratio "weft shared / wasmtime serve:" p3-shared p3-wasmtime
    ratio "weft pooled / native:" p3-pooled p3-native
    ratio "weft shared / native:" p3-shared p3-native
    timing p3-fresh fresh
    timing p3-pooled pooled
    timing p3-shared shared
  )")
  weft slow-shared 18111 "$root/examples/sleep-p3.yaml" "{size: 1, maxConcurrency: 50}"
  wasmtime slow-wasmtime 18112 "$build/sleep-p3.wasm"
  "$native" 127.0.0.1:18113 &
  pids+=($!)
  addr[slow-native]=127.0.0.1:18113
  echo "== slow I/O: every request awaits a 10 ms timer"
  PATH_QUERY="/?ms=10" compare slow-shared slow-wasmtime slow-native
  report+=("$(
    echo "slow I/O (each request awaits a 10 ms timer), same load:"
    row "weft shared (sleep-p3)" slow-shared
    row "wasmtime serve" slow-wasmtime
    row "native hyper + sleep" slow-native
    ratio "weft shared / wasmtime serve:" slow-shared slow-wasmtime
    ratio "weft shared / native:" slow-shared slow-native
    timing slow-shared shared
  )")
fi
if [[ $groups == *tracing* ]]; then
  "$root/scripts/ensure-tools.sh"
  coproc JAEGER { "$jaeger"; }
  pids+=($JAEGER_PID)
  read -r otlp <&"${JAEGER[0]}"
  weft trace-off 18121 "$root/examples/hello-http.yaml" "{size: 8}"
  weft_env=(OTEL_EXPORTER_OTLP_ENDPOINT="$otlp")
  weft trace-all 18124 "$root/examples/hello-http.yaml" "{size: 8}"
  weft_env=(OTEL_EXPORTER_OTLP_ENDPOINT="$otlp" OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.01)
  weft trace-1pct 18127 "$root/examples/hello-http.yaml" "{size: 8}"
  weft_env=()
  echo "== tracing overhead (hello-http pooled)"
  compare trace-off trace-all trace-1pct
  report+=("$(
    echo "tracing, hello-http pooled (size 8), same load:"
    row "traces off" trace-off
    row "exported, all sampled" trace-all
    row "exported, 1% sampled" trace-1pct
    ratio "all sampled / off:" trace-all trace-off
    ratio "1% sampled / off:" trace-1pct trace-off
  )")
fi
if [[ $groups == *toolchains* ]]; then
  # toolchain <name> <manifest> <component> <host> <path> <port> [wasmtime serve flags]
  toolchain() {
    local name=$1 manifest=$2 component=$3 host=$4 path=$5 port=$6
    shift 6
    weft "$name-fresh" "$port" "$manifest"
    weft "$name-pooled" $((port + 3)) "$manifest" "{size: 4}"
    wasmtime "$name-wasmtime" $((port + 1)) "$component" "$@"
    echo "== $name"
    PATH_QUERY=$path compare "$name-fresh" "$name-pooled" "$name-wasmtime"
    local cold cranelift cached cache
    cache=$(mktemp -d)
    cranelift=$(first_response "$manifest" "$host" "$path" "$cache" --compiler cranelift)
    rm -rf "$cache"
    cache=$(mktemp -d)
    cold=$(first_response "$manifest" "$host" "$path" "$cache")
    # The cold run above stopped at its first response, before Cranelift's code was cached.
    first_response "$manifest" "$host" "$path" "$cache" --compiler cranelift >/dev/null
    cached=$(first_response "$manifest" "$host" "$path" "$cache")
    rm -rf "$cache"
    report+=("$(
      echo "$name ($(du -h "$component" | cut -f1)), same load:"
      row "weft fresh" "$name-fresh"
      row "weft pooled (size 4)" "$name-pooled"
      row "wasmtime serve $*" "$name-wasmtime"
      ratio "weft fresh / wasmtime serve:" "$name-fresh" "$name-wasmtime"
      ratio "weft pooled / wasmtime serve:" "$name-pooled" "$name-wasmtime"
      ratio "weft pooled / weft fresh:" "$name-pooled" "$name-fresh"
      timing "$name-fresh" fresh
      timing "$name-pooled" pooled
      printf '  start to first response: %.2f s cold (Winch first), %.2f s cold with --compiler cranelift (Cranelift), %.2f s from the compile cache\n' "$cold" "$cranelift" "$cached"
    )")
  }
  toolchain javascript "$root/examples/hello-js.yaml" "$build/hello-js.wasm" hello-js.localhost / 18091 -S cli
  toolchain python "$root/examples/hello-python.yaml" "$build/hello-python.wasm" hello-python.localhost / 18131 -S cli
  toolchain wac-composed "$root/examples/greet-composed.yaml" "$build/greet-composed.wasm" \
    greet-composed.localhost "/?name=Weft" 18141
fi
if [[ $groups == *density* ]]; then
  echo "== density: $density idle hello Workloads"
  many=$(mktemp --suffix=.yaml -p "$root/examples")
  manifests+=("$many")
  awk -v n="$density" 'BEGIN { for (i = 1; i <= n; i++) printf "---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: d%d}\nspec:\n  components:\n    - name: hello\n      image: build/hello-http.wasm\n      limits: {memory: 2Mi, maxConcurrency: 1}\n  hostInterfaces:\n    - {namespace: wasi, package: http, interfaces: [incoming-handler], version: 0.2.0, config: {host: d%d.localhost}}\n", i, i }' >"$many"
  # Each Workload reserves 2 MiB and one instance slot: a budget and a pool that hold them all.
  started=$(date +%s.%N)
  RUST_LOG=warn "$host_agent" run "$many" --listen 127.0.0.1:18071 --admin-listen 127.0.0.1:19071 \
    --memory-budget $((density * 2 + 1024))Mi --max-instances $((density + 100)) \
    --max-instance-memory 16Mi >/dev/null 2>&1 &
  density_pid=$!
  pids+=($density_pid)
  # Ask every host name that has not answered 200 yet, 32 at a time over kept-alive
  # connections (one curl per round, its URLs in a config file), until none is left; a host
  # counts from its first 200, so one slow round does not hide when the last one came up.
  pending=$(mktemp -p "$root/examples")
  manifests+=("$pending")
  seq 1 "$density" >"$pending"
  while [[ -s $pending ]]; do
    answered=$(awk '{ printf "url = \"http://d%s.localhost/\"\noutput = /dev/null\n", $1 }' "$pending" |
      curl -s -Z --parallel-max 32 --connect-to ::127.0.0.1:18071 -K - \
        -w '%{http_code} %{url_effective}\n' 2>/dev/null |
      awk '$1 == 200 { sub("^http://d", "", $2); sub("[.].*", "", $2); print $2 }' || true)
    grep -vxFf <(echo "$answered") "$pending" >"$pending.left" || true
    mv "$pending.left" "$pending"
    kill -0 "$density_pid" 2>/dev/null || { echo "host-agent exited" >&2; exit 1; }
  done
  all_answered=$(echo "$(date +%s.%N) - $started" | bc -l)
  rss_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/$density_pid/status")
  report+=("$(
    echo "density: $density idle hello Workloads in one host-agent run:"
    printf '  every one answered within %.1f s of the process start (manifest read, compile, start)\n' "$all_answered"
    printf '  RSS then: %.0f MiB (%.1f KiB per Workload)\n' "$(echo "$rss_kib / 1024" | bc -l)" "$(echo "$rss_kib / $density" | bc -l)"
  )")
fi

if [[ $groups == *cluster* ]]; then
  echo "== cluster"
  "$root/scripts/ensure-tools.sh"
  cargo build --quiet --release -p host-agent -p operator -p weft-e2e --manifest-path "$root/Cargo.toml"
  report+=("$(
    echo "real control plane, two host-agents (bench-cluster):"
    cargo run --quiet --release -p weft-e2e --bin bench-cluster --manifest-path "$root/Cargo.toml" \
      -- "${CLUSTER_WORKLOADS:-200}" 2>/dev/null | grep -E '^(apply|WorkloadDeployment|rolling|[0-9]+ Workloads)' | sed 's/^/  /'
  )")
fi

echo
printf '%s\n\n' "${report[@]}"
