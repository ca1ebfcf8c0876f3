#!/usr/bin/env bash
# Data-plane rates through a component next to the backend's own client, side by side in one
# run. Not part of `make test`. Prints rates and the ratios.
#
# - Key-value: `kv-counter-http` served by `host-agent run` on the redis backend, driven by wrk
#   (`/incr` = HINCRBY, `/get` = HGET, one per request), against `redis-benchmark` doing the same
#   commands on the same redis-server with the same concurrency.
# - Messaging: request/reply on one nats-server, `nats bench service request` as the client both
#   times; the responder is `msg-echo` (one invocation of a Wasm handler per message, through
#   `host-agent run`'s NATS backend) or `nats bench service serve` (NATS's own Go responder).
#
#   DURATION=10 CONNECTIONS=32 ROUNDS=3 MSGS=20000 scripts/bench-data.sh
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
rounds=${ROUNDS:-3}
msgs=${MSGS:-20000}
eval "$(scripts/ensure-tools.sh --env)"

scripts/ensure-packages.sh
[[ -f examples/build/kv-counter-http.wasm && -f examples/build/msg-echo.wasm ]] || scripts/build-examples.sh
cargo build --quiet --release -p host-agent
bin=${CARGO_TARGET_DIR:-target}/release/host-agent

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nats_port=$(free_port)
"$WEFT_NATS_SERVER" -a 127.0.0.1 -p "$nats_port" >"$work/nats.log" 2>&1 &
pids+=($!)
nats_url=nats://127.0.0.1:$nats_port
nats() { HOME=$work "$WEFT_NATS" --server "$nats_url" "$@"; }

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >/dev/null &
pids+=($!)
for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

sed 's/backend: filesystem/backend: redis/' examples/kv-counter.yaml >"$work/kv.yaml"
sed -i "s#build/#$PWD/examples/build/#" "$work/kv.yaml"
# The echo alone, on NATS, answering bench.echo (namespace default: default.bench.echo).
cat >"$work/echo.yaml" <<EOF
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: echo, namespace: default}
spec:
  components:
    - name: echo
      image: $PWD/examples/build/msg-echo.wasm
      limits: {maxConcurrency: $connections}
  hostInterfaces:
    - namespace: wasmcloud
      package: messaging
      interfaces: [consumer, handler]
      version: 0.2.0
      config: {backend: nats, subscriptions: bench.echo}
EOF
http_port=$(free_port)
admin_port=$(free_port)
for _ in $(seq 1 100); do nats rtt >/dev/null 2>&1 && break; sleep 0.1; done
RUST_LOG=warn "$bin" run "$work/kv.yaml" "$work/echo.yaml" --listen "127.0.0.1:$http_port" \
  --admin-listen "127.0.0.1:$admin_port" --redis-url "redis://127.0.0.1:$redis_port" \
  --nats-url "$nats_url" --data-dir "$work/data" >"$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  curl -sf -o /dev/null -H 'Host: counter.localhost' "http://127.0.0.1:$http_port/get?key=x" && break
  curl -s -o /dev/null -w '%{http_code}' -H 'Host: counter.localhost' "http://127.0.0.1:$http_port/get?key=x" | grep -q 404 && break
  sleep 0.1
done

weft() { # <path> -> requests/s
  wrk -t2 -c"$connections" -d"${duration}s" -H 'Host: counter.localhost' \
    "http://127.0.0.1:$http_port$1" | awk '/^Requests\/sec/ { printf "%.0f\n", $2 }'
}
reference() { # <redis command...> -> requests/s
  redis-benchmark -p "$redis_port" -c "$connections" -n 200000 -q "$@" |
    awk -F'[ :]+' '/requests per second/ { for (i = 1; i <= NF; i++) if ($i == "requests") { printf "%.0f\n", $(i-1); exit } }'
}

requests() { # <subject> -> replies/s, from nats bench as the client
  nats bench service request "$1" --clients "$connections" --msgs "$msgs" --size 128B --no-progress 2>&1 |
    awk '/aggregated stats/ { for (i = 1; i <= NF; i++) if ($i == "msgs/sec") { gsub(",", "", $(i-1)); printf "%.0f\n", $(i-1); exit } }'
}
native_responder() {
  nats bench service serve bench.native --clients "$connections" --msgs 100000000 --no-progress >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do nats request bench.native x --timeout 200ms >/dev/null 2>&1 && break; sleep 0.1; done
}
native_responder

declare -A sum
for key in weft_incr weft_get redis_incr redis_get weft_request nats_request; do sum[$key]=0; done
for round in $(seq 1 "$rounds"); do
  r=$(weft "/incr?key=bench"); sum[weft_incr]=$((sum[weft_incr] + r))
  printf 'round %d  weft  incr %8s req/s\n' "$round" "$r"
  r=$(reference HINCRBY weft:kv:default/counter bench 1); sum[redis_incr]=$((sum[redis_incr] + r))
  printf 'round %d  redis incr %8s req/s\n' "$round" "$r"
  r=$(weft "/get?key=bench"); sum[weft_get]=$((sum[weft_get] + r))
  printf 'round %d  weft  get  %8s req/s\n' "$round" "$r"
  r=$(reference HGET weft:kv:default/counter bench); sum[redis_get]=$((sum[redis_get] + r))
  printf 'round %d  redis get  %8s req/s\n' "$round" "$r"
  r=$(requests default.bench.echo); sum[weft_request]=$((sum[weft_request] + r))
  printf 'round %d  weft  request/reply %8s msgs/s\n' "$round" "$r"
  r=$(requests bench.native); sum[nats_request]=$((sum[nats_request] + r))
  printf 'round %d  nats  request/reply %8s msgs/s\n' "$round" "$r"
done

echo
echo "kv-counter-http on redis vs redis-benchmark, $connections connections, mean of $rounds rounds:"
for op in incr get; do
  w=$((sum[weft_$op] / rounds)); r=$((sum[redis_$op] / rounds))
  printf '  %-5s weft %8d req/s   redis-benchmark %8d req/s   ratio %.3f\n' "$op" "$w" "$r" "$(echo "$w / $r" | bc -l)"
done

w=$((sum[weft_request] / rounds)); r=$((sum[nats_request] / rounds))
echo "request/reply on nats, msg-echo vs nats bench service serve, $connections clients, mean of $rounds rounds:"
printf '  weft %8d msgs/s   nats %8d msgs/s   ratio %.3f\n' "$w" "$r" "$(echo "$w / $r" | bc -l)"
