# syntax=docker/dockerfile:1
# The operator image: built from the workspace root,
#   docker build -f docker/operator.Dockerfile -t weft/operator:0.1.0 .
# Without Docker, scripts/build-images.sh builds the same image: both take the root filesystem
# from `xtask rootfs` (xtask/src/image.rs).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p operator -p xtask \
    && target/release/xtask rootfs target/release/operator /rootfs

# The binary, the libraries it links, CA certificates and a passwd entry: no shell, no
# package manager, nothing else.
FROM scratch
COPY --from=build /rootfs /
USER 65532:65532
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/usr/local/bin/operator"]
