#!/usr/bin/env bash
# Soak: REQUESTS (default 1,000,000) requests through one release `host-agent run` serving a
# fresh hello, a pooled hello, a key-value counter and a blob reader (filesystem backends), wrk
# against each in turn, CHUNK seconds at a time, with the agent's RSS sampled after every round.
# Prints the RSS after the warm-up round and at the end, and the growth. Not part of `make test`.
#
#   REQUESTS=1000000 CHUNK=5 CONNECTIONS=32 scripts/soak.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
requests=${REQUESTS:-1000000}
chunk=${CHUNK:-5}
connections=${CONNECTIONS:-32}

"$root/scripts/ensure-packages.sh"
cargo build --quiet --release -p host-agent --manifest-path "$root/Cargo.toml"
host_agent=${CARGO_TARGET_DIR:-$root/target}/release/host-agent

work=$(mktemp -d)
pooled=$(mktemp --suffix=.yaml -p "$root/examples")
cleanup() {
  [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work" "$pooled"
}
trap cleanup EXIT

# The pooled hello: the same component under another name and host, with a warm pool.
sed -e 's/^  name: hello$/  name: hello-pooled/' -e 's/host: hello.localhost/host: pooled.localhost/' \
  -e 's|^\(      image: build/hello-http.wasm\)$|\1\n      pool: {size: 8}|' \
  "$root/examples/hello-http.yaml" >"$pooled"

port=$((20000 + RANDOM % 20000))
RUST_LOG=warn "$host_agent" run "$root/examples/hello-http.yaml" "$pooled" \
  "$root/examples/kv-counter.yaml" "$root/examples/blobstore.yaml" \
  --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" \
  --data-dir "$work/data" --image-dir "$work/images" >"$work/agent.log" 2>&1 &
pid=$!
url=http://127.0.0.1:$port
# Every Workload compiles on its own; the blob reader's object is written once it serves.
for _ in $(seq 1 1200); do
  curl -sf -o /dev/null -H 'Host: hello.localhost' "$url/" &&
    curl -sf -o /dev/null -H 'Host: pooled.localhost' "$url/" &&
    curl -sf -o /dev/null -H 'Host: counter.localhost' "$url/incr?key=hits" &&
    curl -sf -o /dev/null -X PUT -H 'Host: blobs.localhost' --data-binary 'soak object' "$url/soak/object" &&
    break
  sleep 0.1
done

targets=("hello.localhost /" "pooled.localhost /" "counter.localhost /incr?key=hits" "blobs.localhost /soak/object")
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
declare -A done_by
total=0 round=0 warm=""
while ((total < requests)); do
  round=$((round + 1))
  for target in "${targets[@]}"; do
    read -r host path <<<"$target"
    out=$(wrk -t2 -c"$connections" -d"${chunk}s" -H "Host: $host" "$url$path")
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    errors=$(awk '/Non-2xx/ { print }' <<<"$out")
    if [[ -n $errors ]]; then
      echo "soak: $host$path: $errors" >&2
      tail -5 "$work/agent.log" >&2
      exit 1
    fi
    done_by[$host]=$((${done_by[$host]:-0} + n))
    total=$((total + n))
  done
  now=$(rss)
  [[ -z $warm ]] && warm=$now
  printf 'round %3d  %8d requests  RSS %s MiB\n' "$round" "$total" "$now"
done
end=$(rss)
printf 'soak: %d requests (hello fresh %d, pooled %d, kv %d, blob %d); RSS %s MiB after the first round, %s MiB after all (%+.1f%%)\n' \
  "$total" "${done_by[hello.localhost]}" "${done_by[pooled.localhost]}" \
  "${done_by[counter.localhost]}" "${done_by[blobs.localhost]}" "$warm" "$end" \
  "$(echo "($end - $warm) * 100 / $warm" | bc -l)"
