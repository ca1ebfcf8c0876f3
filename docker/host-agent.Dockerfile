# syntax=docker/dockerfile:1
# The host-agent image: built from the workspace root,
#   docker build -f docker/host-agent.Dockerfile -t weft/host-agent:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p host-agent && cp target/release/host-agent /host-agent

# Small and non-root: glibc and CA certificates (registries over HTTPS), nothing else.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /host-agent /usr/local/bin/host-agent
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/host-agent"]
