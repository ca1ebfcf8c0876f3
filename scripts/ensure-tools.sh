#!/usr/bin/env bash
# Builds the real third-party servers and clients the tests run against, from the Go module
# proxy, once per version, into ~/.cache/weft/tools/<name>-<version>/bin.
#
#   scripts/ensure-tools.sh            build whatever is missing, print nothing else
#   scripts/ensure-tools.sh --env      also print `export WEFT_<TOOL>=/path` lines
#
# Tools: registry (CNCF distribution, an OCI registry), oras (an OCI client no one here wrote),
# etcd and kube-apiserver (a real control plane for the end-to-end tests), kube-scheduler,
# kube-controller-manager and kubelet (a real node that runs the chart's Pods), kubectl (its client,
# the same release; no Debian package of it exists), helm (the chart's installer), nats-server
# (JetStream, the production backend of keyvalue, blobstore and messaging) and nats (its own
# client, the reference in `make bench-data`) and jaeger (takes OTLP traces and answers queries,
# for the tracing tests). A directory in
# KUBEBUILDER_ASSETS holding etcd and kube-apiserver is used instead of building them, as
# envtest users expect.
set -euo pipefail

cache=${WEFT_TOOLS_DIR:-$HOME/.cache/weft/tools}

# name  go-package  version  binary
k8s_version=v1.35.4
tools=(
  "registry github.com/distribution/distribution/v3/cmd/registry v3.0.0 registry"
  "oras oras.land/oras/cmd/oras v1.2.3 oras"
  "etcd go.etcd.io/etcd/server/v3 v3.6.16 etcd"
  "kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver $k8s_version kube-apiserver"
  "kubectl k8s.io/kubernetes/cmd/kubectl $k8s_version kubectl"
  "kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler $k8s_version kube-scheduler"
  "kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager $k8s_version kube-controller-manager"
  "kubelet k8s.io/kubernetes/cmd/kubelet $k8s_version kubelet"
  "helm helm.sh/helm/v3/cmd/helm v3.21.4 helm"
  "nats-server github.com/nats-io/nats-server/v2 v2.15.2 nats-server"
  "nats github.com/nats-io/natscli/nats v0.5.0 nats"
  "jaeger github.com/jaegertracing/jaeger/cmd/jaeger v1.75.0 jaeger"
)

# k8s.io/kubernetes replaces its staging modules with local paths, so a module requiring it
# must replace each with the published v0.x of the same release.
staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

# Extra steps for one tool's module, run in its directory before `go get`.
prepare() {
  local name=$1 version=$2 pkg=$3
  if [[ $pkg == k8s.io/kubernetes/* ]]; then
    local staging_version=v0.${version#v1.}
    for module in "${staging[@]}"; do
      go mod edit -replace "k8s.io/$module=k8s.io/$module@$staging_version"
    done
  fi
}

# Linker flags: no symbol table or DWARF (kubectl links in 1.7 s instead of 3.9 s, 59 MB not 84), and
# Kubernetes stamps its version, or clients (helm) see v0.0.0.
ldflags() {
  local name=$1 version=$2 pkg=$3
  echo -n "-s -w "
  if [[ $pkg == k8s.io/kubernetes/* ]]; then
    local minor=${version#v1.}
    minor=${minor%%.*}
    echo "-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  elif [[ $name == helm ]]; then
    echo "-X helm.sh/helm/v3/internal/version.version=$version"
  fi
}

print_env=false
[[ ${1:-} == --env ]] && print_env=true

for entry in "${tools[@]}"; do
  read -r name pkg version bin <<<"$entry"
  var=WEFT_${name^^}
  var=${var//-/_}
  if [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/$bin ]]; then
    if $print_env; then echo "export $var=$KUBEBUILDER_ASSETS/$bin"; fi
    continue
  fi
  dir="$cache/$name-$version"
  if [[ ! -x $dir/bin/$bin ]]; then
    echo "ensure-tools: building $name $version (once; cached in $dir)" >&2
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.$name-XXXXXX")
    # A throwaway module that requires the tool: `go install pkg@version` would also list every
    # version of the module, which the module proxy refuses for some (oras).
    (
      cd "$tmp"
      go mod init "weft.tools/$name" >/dev/null 2>&1
      prepare "$name" "$version" "$pkg"
      GOFLAGS=-buildvcs=false go get "$pkg@$version" >&2
      CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "$(ldflags "$name" "$version" "$pkg")" \
        -o "$tmp/bin/$bin" "$pkg" >&2
    )
    # Renamed into place only when built: a half-built tool never looks present.
    rm -rf "$dir"
    mkdir -p "$dir"
    mv "$tmp/bin" "$dir/bin"
    rm -rf "$tmp"
  fi
  if $print_env; then
    echo "export $var=$dir/bin/$bin"
  fi
done
