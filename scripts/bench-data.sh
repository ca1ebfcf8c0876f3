#!/usr/bin/env bash
# Key-value rates through a component next to the backend's own client, side by side in one
# run: `kv-counter-http` served by `host-agent run` on the redis backend, driven by wrk
# (`/incr` = HINCRBY, `/get` = HGET, one per request), against `redis-benchmark` doing the same
# commands on the same redis-server with the same concurrency. Prints requests/s and the ratios.
# Not part of `make test`.
#
#   DURATION=10 CONNECTIONS=32 ROUNDS=3 scripts/bench-data.sh
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
rounds=${ROUNDS:-3}

scripts/ensure-packages.sh
[[ -f examples/build/kv-counter-http.wasm ]] || scripts/build-examples.sh
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

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >/dev/null &
pids+=($!)
for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

sed 's/backend: filesystem/backend: redis/' examples/kv-counter.yaml >"$work/kv.yaml"
sed -i "s#build/#$PWD/examples/build/#" "$work/kv.yaml"
http_port=$(free_port)
admin_port=$(free_port)
RUST_LOG=warn "$bin" run "$work/kv.yaml" --listen "127.0.0.1:$http_port" \
  --admin-listen "127.0.0.1:$admin_port" --redis-url "redis://127.0.0.1:$redis_port" \
  --data-dir "$work/data" >"$work/agent.log" 2>&1 &
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

declare -A sum
for key in weft_incr weft_get redis_incr redis_get; do sum[$key]=0; done
for round in $(seq 1 "$rounds"); do
  r=$(weft "/incr?key=bench"); sum[weft_incr]=$((sum[weft_incr] + r))
  printf 'round %d  weft  incr %8s req/s\n' "$round" "$r"
  r=$(reference HINCRBY weft:kv:default/counter bench 1); sum[redis_incr]=$((sum[redis_incr] + r))
  printf 'round %d  redis incr %8s req/s\n' "$round" "$r"
  r=$(weft "/get?key=bench"); sum[weft_get]=$((sum[weft_get] + r))
  printf 'round %d  weft  get  %8s req/s\n' "$round" "$r"
  r=$(reference HGET weft:kv:default/counter bench); sum[redis_get]=$((sum[redis_get] + r))
  printf 'round %d  redis get  %8s req/s\n' "$round" "$r"
done

echo
echo "kv-counter-http on redis vs redis-benchmark, $connections connections, mean of $rounds rounds:"
for op in incr get; do
  w=$((sum[weft_$op] / rounds)); r=$((sum[redis_$op] / rounds))
  printf '  %-5s weft %8d req/s   redis-benchmark %8d req/s   ratio %.3f\n' "$op" "$w" "$r" "$(echo "$w / $r" | bc -l)"
done
