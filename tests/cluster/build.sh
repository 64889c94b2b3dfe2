#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy at pinned versions into
# ${SPILLWAY_CACHE:-~/.cache/spillway}. Idempotent: a binary already built at its version is kept,
# so a warm run takes about a second. A cold run takes 18 to 32 minutes on 2 cores (docs/testing.md);
# each part's time is printed on stderr.
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
#   kubelet, kube-proxy          k8s.io/kubernetes v1.36.3
#   etcd                         go.etcd.io/etcd/server/v3 v3.6.16
#   kwok                         sigs.k8s.io/kwok v0.7.0 (fake nodes; built-in default stages)
#   helm                         helm.sh/helm/v3 v3.22.0, with its release build's ldflags
#   containerd, its runc shim, ctr   github.com/containerd/containerd/v2 v2.2.9
#   coredns                      github.com/coredns/coredns v1.15.0
#   pause                        tests/cluster/images/pause (the pods' sandbox process)
#   prometheus                   github.com/prometheus/prometheus v0.316.0 (Prometheus 3.16.0):
#                                Debian's package is built without Kubernetes service discovery
# `build.sh` builds every part; `build.sh NAME...` only those (e.g. `pause prometheus`, what the
# images need). Prints the bin directories, one per line, as NAME=DIR.
set -euo pipefail
K8S_VERSION=v1.36.3
K8S_STAGING_VERSION=v0.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.7.0
HELM_VERSION=v3.22.0
CONTAINERD_VERSION=v2.2.9
COREDNS_VERSION=v1.15.0
PROMETHEUS_MODULE_VERSION=v0.316.0  # Prometheus 3.16.0 (the module's v0.3MM.P maps to 3.MM.P)
CACHE=${SPILLWAY_CACHE:-$HOME/.cache/spillway}
export CGO_ENABLED=0 GOFLAGS=-mod=mod

command -v go >/dev/null || { echo "build.sh needs Go 1.26 or later on PATH" >&2; exit 2; }

k8s_bin=$CACHE/k8s-$K8S_VERSION/bin
etcd_bin=$CACHE/etcd-$ETCD_VERSION/bin
kwok_bin=$CACHE/kwok-$KWOK_VERSION/bin
helm_bin=$CACHE/helm-$HELM_VERSION-release/bin
containerd_bin=$CACHE/containerd-$CONTAINERD_VERSION/bin
coredns_bin=$CACHE/coredns-$COREDNS_VERSION/bin
pause_bin=$CACHE/pause/bin
prometheus_bin=$CACHE/prometheus-$PROMETHEUS_MODULE_VERSION/bin
HERE=$(cd "$(dirname "$0")" && pwd)

have() { [ -x "$1" ] && [ -f "$1.ok" ]; }
mark() { touch "$1.ok"; }

build_kubernetes() {
  local missing=()
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
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

build_installable() {  # NAME BIN_DIR PACKAGE@VERSION [EXTRA_LDFLAGS]
  have "$2/$1" && return
  mkdir -p "$2"
  echo "building $3" >&2
  GOBIN=$2 go install -trimpath -ldflags "-s -w ${4:-}" "$3"
  mark "$2/$1"
}

# helm's release build stamps its version and the Kubernetes version it assumes for
# `helm template` / `helm lint` (.Capabilities.KubeVersion); a plain `go install` leaves the
# latter at v1.20, where a chart with `kubeVersion: ">=1.30"` fails. Same flags as helm's Makefile.
helm_ldflags() {
  local k8s_minor=${K8S_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
  printf -- '-X helm.sh/helm/v3/internal/version.version=%s -X helm.sh/helm/v3/internal/version.gitTreeState=clean' "$HELM_VERSION"
  printf -- ' -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=%s' "$k8s_minor"
  printf -- ' -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=%s' "$k8s_minor"
}

build_containerd() {
  local missing=()
  for cmd in containerd containerd-shim-runc-v2 ctr; do have "$containerd_bin/$cmd" || missing+=("$cmd"); done
  [ ${#missing[@]} -eq 0 ] && return
  mkdir -p "$containerd_bin"
  local pkg=github.com/containerd/containerd/v2
  local flags="-X $pkg/version.Version=$CONTAINERD_VERSION -X $pkg/version.Package=$pkg"
  for cmd in "${missing[@]}"; do
    echo "building $cmd $CONTAINERD_VERSION" >&2
    # Without cgo the btrfs snapshotter is left out; the node uses overlayfs.
    GOBIN=$containerd_bin go install -trimpath -tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w $flags" \
      "$pkg/cmd/$cmd@$CONTAINERD_VERSION"
    mark "$containerd_bin/$cmd"
  done
}

build_pause() {
  local source=$HERE/images/pause/main.go sum
  sum=$(sha256sum "$source" | cut -c1-16)
  [ -x "$pause_bin/pause" ] && [ "$(cat "$pause_bin/pause.ok" 2>/dev/null)" = "$sum" ] && return
  mkdir -p "$pause_bin"
  (cd "$HERE/images/pause" && go build -trimpath -ldflags "-s -w" -o "$pause_bin/pause" main.go)
  echo "$sum" > "$pause_bin/pause.ok"
}

prometheus_release=${PROMETHEUS_MODULE_VERSION#v0.}
prometheus_release=3.$(( ${prometheus_release%%.*} - 300 )).${prometheus_release##*.}

# Each part by name, in this order; NAME=DIR printed for each built.
build_part() {
  case $1 in
    k8s) build_kubernetes; echo "K8S_BIN=$k8s_bin" ;;
    etcd) build_etcd; echo "ETCD_BIN=$etcd_bin" ;;
    kwok) build_installable kwok "$kwok_bin" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"; echo "KWOK_BIN=$kwok_bin" ;;
    helm) build_installable helm "$helm_bin" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "$(helm_ldflags)"
          echo "HELM_BIN=$helm_bin" ;;
    containerd) build_containerd; echo "CONTAINERD_BIN=$containerd_bin" ;;
    coredns) build_installable coredns "$coredns_bin" "github.com/coredns/coredns@$COREDNS_VERSION"
             echo "COREDNS_BIN=$coredns_bin" ;;
    pause) build_pause; echo "PAUSE_BIN=$pause_bin" ;;
    prometheus) build_installable prometheus "$prometheus_bin" \
                  "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_MODULE_VERSION" \
                  "-X github.com/prometheus/common/version.Version=$prometheus_release"
                echo "PROMETHEUS_BIN=$prometheus_bin" ;;
    *) echo "build.sh: no part named '$1' (k8s etcd kwok helm containerd coredns pause prometheus)" >&2; exit 2 ;;
  esac
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(k8s etcd kwok helm containerd coredns pause prometheus)
for part in "${parts[@]}"; do
  begun=$SECONDS
  build_part "$part"
  echo "build.sh: $part $((SECONDS - begun)) s" >&2  # each part's time, in make deps' log of the Go step
done
