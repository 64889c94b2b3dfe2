#!/usr/bin/env bash
# Everything `make test` and `make demo` need before pytest starts, built once into
# ${SPILLWAY_CACHE:-~/.cache/spillway} (a warm run takes a few seconds):
#   debian   tests/integration/install-components.sh   Debian's packages (apt)
#   go       tests/cluster/build.sh                   the control plane, the node's parts, Prometheus
#   images   tests/cluster/images.sh (all but pause and prometheus)   mmdebstrap, buildah, Maven
#   crds     tests/cluster/crds.sh                    the providers' CRDs from their Go modules
#   images   tests/cluster/images.sh pause prometheus  the two images built from Go binaries
# The Go builds keep both cores busy compiling; the images and the CRDs mostly wait on the network
# and the disk (downloads, dpkg unpacking, layer copies), so they run beside the Go builds rather
# than after them. `deps.sh images` builds only what the images need (make demo CLUSTER=current).
# Prints each step's wall time on stderr ("deps: go 1234 s") and its log's tail when it fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${SPILLWAY_CACHE:-$HOME/.cache/spillway}
mkdir -p "$CACHE/logs"
started=$SECONDS

step() {  # NAME COMMAND...: runs it with its output in <cache>/logs/deps-NAME.log
  local name=$1 log=$CACHE/logs/deps-$1.log begun=$SECONDS
  shift
  if "$@" >"$log" 2>&1; then
    echo "deps: $name $((SECONDS - begun)) s" >&2
  else
    echo "deps: $name failed after $((SECONDS - begun)) s; the end of $log:" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
}

step debian bash "$ROOT/tests/integration/install-components.sh"
if [ "${1:-all}" = images ]; then
  step images bash "$ROOT/tests/cluster/images.sh"
  echo "deps: total $((SECONDS - started)) s" >&2
  exit 0
fi
pids=()
step go bash "$ROOT/tests/cluster/build.sh" & pids+=($!)
step images-debian bash "$ROOT/tests/cluster/images.sh" base operator java session-app redis valkey haproxy & pids+=($!)
step crds bash "$ROOT/tests/cluster/crds.sh" & pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ $failed -eq 0 ] || exit 1
step images-go bash "$ROOT/tests/cluster/images.sh" pause prometheus
echo "deps: total $((SECONDS - started)) s" >&2
