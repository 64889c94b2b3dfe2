#!/usr/bin/env bash
# The integration suite on a kind cluster, where a Docker engine exists (not on machines
# without one: there the local control plane of tests/cluster runs the same suite).
#   tests/e2e/run-kind.sh            create the cluster if needed, build and load the images, test
#   KEEP_CLUSTER=1 tests/e2e/run-kind.sh   leave the cluster up afterwards
# The images are the test bed's own (tests/cluster/images.sh: pause, the Debian base, the
# operator from the Dockerfile, built with mmdebstrap and buildah), so both beds run the same
# bits; one worker is labelled and tainted as the suite's "real node".
set -euo pipefail
cd "$(dirname "$0")/../.."
CLUSTER=${KIND_CLUSTER:-spillway-e2e}
for tool in docker kind kubectl buildah mmdebstrap go; do
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

bash tests/cluster/build.sh >/dev/null  # helm, kubectl and the pause binary
# mmdebstrap and buildah build as root; the archives they leave are world-readable.
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
while IFS='=' read -r _ archive; do
  kind load image-archive "$archive" --name "$CLUSTER"
done < <($SUDO env SPILLWAY_CACHE="${SPILLWAY_CACHE:-$HOME/.cache/spillway}" bash tests/cluster/images.sh)
node=$(kubectl --kubeconfig "$workdir/kubeconfig" get nodes -l '!node-role.kubernetes.io/control-plane' -o name | head -1)
kubectl --kubeconfig "$workdir/kubeconfig" label "$node" spillway.io/real-node=true --overwrite
kubectl --kubeconfig "$workdir/kubeconfig" taint "$node" spillway.io/real-node=true:NoSchedule --overwrite

make venv
export SPILLWAY_KUBECONFIG="$workdir/kubeconfig"
.venv/bin/python -m pytest -m integration tests/integration -v
