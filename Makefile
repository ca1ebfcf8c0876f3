# Weft: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
LISTEN ?= 127.0.0.1:8080

.PHONY: run dev test examples tools host-agent lint unit crds bench bench-pull bench-data bench-cluster bench-soak dev-cluster fuzz clean

## run: build the examples and the host-agent, then serve examples/hello-http.yaml locally
run: examples host-agent
	$(CARGO) run --quiet --release -p host-agent -- run examples/hello-http.yaml --listen $(LISTEN)

## dev: like run, rebuilding examples/components/hello-http on every change and swapping it in live
dev: examples host-agent
	$(CARGO) run --quiet --release -p host-agent -- dev examples/hello-http.yaml --listen $(LISTEN) \
		--watch examples/components/hello-http/src --build scripts/build-examples.sh

## test: format check, clippy with warnings denied, and every test
test: examples lint unit

## examples: build the guest components in examples/ (Rust; JavaScript with componentize-js, Python with componentize-py, a wac composition; installs what is missing)
examples:
	scripts/build-examples.sh

## tools: build the real servers and clients the tests use (OCI registry, oras), once per version
tools:
	scripts/ensure-tools.sh

host-agent:
	$(CARGO) build --release -p host-agent

lint:
	scripts/ensure-packages.sh
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	# An embedder's runtime with only some plugins and backends builds alone, warning-free.
	for features in "" keyvalue,redis blobstore,messaging,nats; do \
		$(CARGO) clippy -p weft-runtime --lib --no-default-features --features "$$features" --locked -- -D warnings || exit 1; \
	done
	# Every public item of the runtime is documented, and its docs link only to public items.
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p weft-runtime --no-deps --locked

unit: tools
	$(CARGO) test --workspace --locked --no-fail-fast

## dev-cluster: a single-node cluster (kubelet + containerd, no Docker) with Weft installed by helm; root; until Ctrl-C
dev-cluster: examples tools
	$(CARGO) build --quiet -p operator -p host-agent -p xtask -p weft-e2e
	$(CARGO) run --quiet -p weft-e2e --bin dev-cluster

## fuzz: fuzz every parser of tenant input (cargo-fuzz, nightly) for FUZZ_SECONDS each (default 60); keeps fuzz/corpus, which make test replays
fuzz:
	scripts/fuzz.sh

## crds: regenerate crds/ from the API types
crds:
	$(CARGO) run --quiet -p operator -- crd --out-dir crds
	cp crds/*.yaml charts/weft/crds/

## bench: host-agent run (fresh and pooled) vs wasmtime serve and native hyper, hello-http and a componentize-py Python hello, side by side (not part of test)
bench: examples
	scripts/bench.sh

## bench-pull: pull time and first-request latency, uncached vs cached digest, next to oras pull
bench-pull: examples
	scripts/bench-pull.sh

## bench-data: key-value rates through a component on redis, next to redis-benchmark (not part of test)
bench-data: examples
	scripts/bench-data.sh

## bench-soak: one million requests (fresh and pooled hello, key-value, blobs) through one agent, its RSS before and after (not part of test)
bench-soak: examples
	scripts/soak.sh

## bench-cluster: apply-to-first-response, a 3-replica WorkloadDeployment and its rolling update, 200 Workloads to Ready on a real control plane and their idle cost; then SCALE (default 2000) Workloads on 4 agents vs the API server's pace, failover, 1,000 replicas rolled, delete (BENCH_CLUSTER_GROUPS=basic|scale)
bench-cluster: examples tools
	$(CARGO) build --quiet --release -p host-agent -p operator -p weft-e2e
	$(CARGO) run --quiet --release -p weft-e2e --bin bench-cluster

clean:
	$(CARGO) clean
	rm -rf examples/target examples/build
