#!/usr/bin/env bash
# Fetches the balancing providers' CRDs from their released Go modules (the Go module proxy) at
# pinned versions into ${SPILLWAY_CACHE:-~/.cache/spillway}/crds/<set>-<version>/, so that tests
# check what Spillway renders against the schemas the providers ship. Only the APIs: no
# controller is installed. Idempotent: a set already fetched at its version is kept, so a warm
# run takes well under a second; a cold one downloads about 15 MB of module zips.
#   gateway-standard       sigs.k8s.io/gateway-api v1.6.3   config/crd/standard/*.yaml
#   gateway-experimental   sigs.k8s.io/gateway-api v1.6.3   config/crd/experimental/*.yaml
#                          (the CRDs only: the safe-upgrades ValidatingAdmissionPolicy beside them
#                          refuses the experimental channel over the standard one, which the
#                          tests switch between)
#   envoy-gateway          github.com/envoyproxy/gateway v1.9.1
#                          charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_*.yaml
#                          (not the chart's copy of Gateway API's CRDs)
#   istio                  istio.io/api v1.30.8   the networking.istio.io CRDs of
#                          kubernetes/customresourcedefinitions.gen.yaml
#   prometheus-operator    github.com/prometheus-operator/prometheus-operator v0.85.0
#                          example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml
#   capacity-buffer        sigs.k8s.io/karpenter v1.14.3
#                          pkg/apis/crds/autoscaling.x-k8s.io_capacitybuffers.yaml (the
#                          autoscaling.x-k8s.io/v1beta1 CapacityBuffer, as Karpenter 1.14 installs
#                          it; the Cluster Autoscaler's own apis module is not served by the proxy).
#                          That release needs Go 1.26.10, newer than this machine's, for `go mod
#                          download`: its zip is taken from the proxy directly and the one file is
#                          checked against the sha256 it had when first fetched through Go.
# NGINX Gateway Fabric is missing: the proxy answers 403 "This module version is not available"
# for github.com/nginx/nginx-gateway-fabric/v2 (v2.6.0, v2.6.1, v2.6.2), the path without /v2
# and both version lists.
# Prints the set directories, one per line, as NAME_CRDS=DIR (gateway-standard: GATEWAY_STANDARD_CRDS).
set -euo pipefail
GATEWAY_API_VERSION=v1.6.3
ENVOY_GATEWAY_VERSION=v1.9.1
ISTIO_API_VERSION=v1.30.8  # Istio 1.30.8
PROMETHEUS_OPERATOR_VERSION=v0.85.0
KARPENTER_VERSION=v1.14.3
CAPACITY_BUFFER_SHA256=66fd5680b902b38fb9657ad2b432196a06c42b37d078e53be2e39909200a6342
CACHE=${SPILLWAY_CACHE:-$HOME/.cache/spillway}
OUT=$CACHE/crds
# A module cache of this run's own: the zips are only read here, never built, and are removed
# at the end (Go writes its module cache read-only, hence the chmod).
GOPATH_TMP=$OUT/.gopath
export GOFLAGS=-mod=mod GOPATH=$GOPATH_TMP GOMODCACHE=$GOPATH_TMP/pkg/mod

command -v go >/dev/null || { echo "crds.sh needs Go on PATH" >&2; exit 2; }
mkdir -p "$OUT"
cleanup() { [ ! -d "$GOPATH_TMP" ] || { chmod -R u+w "$GOPATH_TMP" && rm -rf "$GOPATH_TMP"; }; }
trap cleanup EXIT

have() { [ -f "$1/.ok" ]; }

module_dir() {  # MODULE@VERSION: downloads it (once a run) and prints where its files are
  local json
  if ! json=$(cd "$OUT" && go mod download -json "$1"); then
    echo "go mod download -json $1 failed:" >&2
    echo "$json" >&2
    exit 1
  fi
  sed -n 's/^[[:space:]]*"Dir": "\([^"]*\)",\{0,1\}$/\1/p' <<< "$json"
}

finish() {  # DIR: the set written to DIR.partial is complete; moves it in place
  ls "$1.partial"/*.yaml >/dev/null 2>&1 || { echo "no CRDs found for $(basename "$1")" >&2; exit 1; }
  touch "$1.partial/.ok"
  rm -rf "$1"
  mv "$1.partial" "$1"
}

fetch_files() {  # NAME VERSION MODULE GLOB...: the files among the module's GLOBs that hold a CRD
  local dir=$OUT/$1-$2 module=$3@$2 src f
  shift 3
  have "$dir" && return
  echo "fetching $module" >&2
  src=$(module_dir "$module")
  rm -rf "$dir.partial"
  mkdir -p "$dir.partial"
  for pattern in "$@"; do
    for f in "$src"/$pattern; do
      if [ -f "$f" ] && grep -q '^kind: CustomResourceDefinition$' "$f"; then install -m 0644 "$f" "$dir.partial/"; fi
    done
  done
  finish "$dir"
}

fetch_group() {  # NAME VERSION MODULE FILE GROUP: the CRDs of one API group from a multi-document file
  local dir=$OUT/$1-$2 module=$3@$2 file=$4 group=$5 src
  have "$dir" && return
  echo "fetching $module" >&2
  src=$(module_dir "$module")
  rm -rf "$dir.partial"
  mkdir -p "$dir.partial"
  awk -v group="$group" '
    function flush() { if (index(doc, "\n  group: " group "\n")) printf "---\n%s", doc; doc = "" }
    /^---$/ { flush(); next }
    { doc = doc $0 "\n" }
    END { flush() }
  ' "$src/$file" > "$dir.partial/$group.yaml"
  [ -s "$dir.partial/$group.yaml" ] || rm "$dir.partial/$group.yaml"
  finish "$dir"
}

fetch_zip_file() {  # NAME VERSION MODULE FILE SHA256: one file of a module's zip from the proxy
  local dir=$OUT/$1-$2 url sum
  have "$dir" && return
  url="$(go env GOPROXY | cut -d, -f1)/$3/@v/$2.zip"
  echo "fetching $url" >&2
  rm -rf "$dir.partial"
  mkdir -p "$dir.partial"
  curl -fsSL --retry 3 -o "$dir.partial/module.zip" "$url"
  python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
    "$dir.partial/module.zip" "$3@$2/$4" > "$dir.partial/$(basename "$4")"
  rm "$dir.partial/module.zip"
  sum=$(sha256sum "$dir.partial/$(basename "$4")" | cut -d' ' -f1)
  [ "$sum" = "$5" ] || { echo "$3@$2/$4: sha256 $sum, expected $5" >&2; exit 1; }
  finish "$dir"
}

fetch_files gateway-standard "$GATEWAY_API_VERSION" sigs.k8s.io/gateway-api 'config/crd/standard/*.yaml'
fetch_files gateway-experimental "$GATEWAY_API_VERSION" sigs.k8s.io/gateway-api 'config/crd/experimental/*.yaml'
fetch_files envoy-gateway "$ENVOY_GATEWAY_VERSION" github.com/envoyproxy/gateway \
  'charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_*.yaml'
fetch_group istio "$ISTIO_API_VERSION" istio.io/api kubernetes/customresourcedefinitions.gen.yaml networking.istio.io
fetch_files prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" github.com/prometheus-operator/prometheus-operator \
  example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml

echo "GATEWAY_STANDARD_CRDS=$OUT/gateway-standard-$GATEWAY_API_VERSION"
echo "GATEWAY_EXPERIMENTAL_CRDS=$OUT/gateway-experimental-$GATEWAY_API_VERSION"
echo "ENVOY_GATEWAY_CRDS=$OUT/envoy-gateway-$ENVOY_GATEWAY_VERSION"
echo "ISTIO_CRDS=$OUT/istio-$ISTIO_API_VERSION"
fetch_zip_file capacity-buffer "$KARPENTER_VERSION" sigs.k8s.io/karpenter \
  pkg/apis/crds/autoscaling.x-k8s.io_capacitybuffers.yaml "$CAPACITY_BUFFER_SHA256"
echo "PROMETHEUS_OPERATOR_CRDS=$OUT/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
echo "CAPACITY_BUFFER_CRDS=$OUT/capacity-buffer-$KARPENTER_VERSION"
