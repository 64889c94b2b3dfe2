#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy at pinned versions into
# ${SPILLWAY_CACHE:-~/.cache/spillway}. Idempotent: a binary already built at its version is kept,
# so a warm run takes about a second. A cold run takes about 8 minutes on 2 cores.
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  k8s.io/kubernetes v1.36.3
#   etcd   go.etcd.io/etcd/server/v3 v3.6.16
#   kwok   sigs.k8s.io/kwok v0.7.0 (fake nodes; built-in default stages)
#   helm   helm.sh/helm/v3 v3.22.0
# Prints the bin directories, one per line, as NAME=DIR.
set -euo pipefail
K8S_VERSION=v1.36.3
K8S_STAGING_VERSION=v0.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.7.0
HELM_VERSION=v3.22.0
CACHE=${SPILLWAY_CACHE:-$HOME/.cache/spillway}
export CGO_ENABLED=0 GOFLAGS=-mod=mod

command -v go >/dev/null || { echo "build.sh needs Go 1.26 or later on PATH" >&2; exit 2; }

k8s_bin=$CACHE/k8s-$K8S_VERSION/bin
etcd_bin=$CACHE/etcd-$ETCD_VERSION/bin
kwok_bin=$CACHE/kwok-$KWOK_VERSION/bin
helm_bin=$CACHE/helm-$HELM_VERSION/bin

have() { [ -x "$1" ] && [ -f "$1.ok" ]; }
mark() { touch "$1.ok"; }

build_kubernetes() {
  local missing=()
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    have "$k8s_bin/$cmd" || missing+=("$cmd")
  done
  [ ${#missing[@]} -eq 0 ] && return
  # `go install k8s.io/kubernetes/cmd/...` fails on the module's replace directives; a throwaway
  # module that replaces every staging module with its release builds instead.
  local mod=$CACHE/k8s-$K8S_VERSION/module
  mkdir -p "$mod" "$k8s_bin"
  {
    printf 'module spillway.local/k8s\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\n' "$K8S_VERSION"
    for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
      cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
      cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt \
      kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics \
      mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller streaming; do
      printf 'replace k8s.io/%s => k8s.io/%s %s\n' "$m" "$m" "$K8S_STAGING_VERSION"
    done
  } > "$mod/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport (\n' > "$mod/tools.go"
  for cmd in "${missing[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd" >> "$mod/tools.go"; done
  printf ')\n' >> "$mod/tools.go"
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
  done
  (cd "$mod" && go mod tidy >/dev/null 2>&1 && for cmd in "${missing[@]}"; do
     echo "building $cmd $K8S_VERSION" >&2
     go build -trimpath -ldflags "-s -w$flags" -o "$k8s_bin/$cmd" "k8s.io/kubernetes/cmd/$cmd"
     mark "$k8s_bin/$cmd"
   done)
}

build_etcd() {
  have "$etcd_bin/etcd" && return
  local mod=$CACHE/etcd-$ETCD_VERSION/module
  mkdir -p "$mod" "$etcd_bin"
  printf 'module spillway.local/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$mod/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$mod/tools.go"
  echo "building etcd $ETCD_VERSION" >&2
  (cd "$mod" && go mod tidy >/dev/null 2>&1 && go build -trimpath -ldflags "-s -w" -o "$etcd_bin/etcd" go.etcd.io/etcd/server/v3)
  mark "$etcd_bin/etcd"
}

build_installable() {  # NAME BIN_DIR PACKAGE@VERSION
  have "$2/$1" && return
  mkdir -p "$2"
  echo "building $3" >&2
  GOBIN=$2 go install -trimpath -ldflags "-s -w" "$3"
  mark "$2/$1"
}

build_kubernetes
build_etcd
build_installable kwok "$kwok_bin" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
build_installable helm "$helm_bin" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"

echo "K8S_BIN=$k8s_bin"
echo "ETCD_BIN=$etcd_bin"
echo "KWOK_BIN=$kwok_bin"
echo "HELM_BIN=$helm_bin"
