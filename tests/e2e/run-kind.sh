#!/usr/bin/env bash
# The integration suite on a kind cluster, where a Docker engine exists (not on machines
# without one: there the local control plane of tests/cluster runs the same suite).
#   tests/e2e/run-kind.sh            create the cluster if needed, build and load the image, test
#   KEEP_CLUSTER=1 tests/e2e/run-kind.sh   leave the cluster up afterwards
set -euo pipefail
cd "$(dirname "$0")/../.."
CLUSTER=${KIND_CLUSTER:-spillway-e2e}
IMAGE=${SPILLWAY_IMAGE:-spillway:e2e}
for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "run-kind.sh needs $tool on PATH" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "run-kind.sh needs a running Docker engine" >&2; exit 2; }

if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --config tests/e2e/kind-config.yaml --wait 180s
fi
workdir=$(mktemp -d)
cleanup() {
  rm -rf "$workdir"
  [ "${KEEP_CLUSTER:-0}" = 1 ] || kind delete cluster --name "$CLUSTER"
}
trap cleanup EXIT
kind get kubeconfig --name "$CLUSTER" > "$workdir/kubeconfig"

docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

make venv
export SPILLWAY_KUBECONFIG="$workdir/kubeconfig" SPILLWAY_IMAGE="$IMAGE" SPILLWAY_IMAGE_PULL_POLICY=Never
.venv/bin/python -m pytest -m integration tests/integration -v
