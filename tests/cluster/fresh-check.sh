#!/usr/bin/env bash
# The README's two commands as a new user runs them: a clean clone of this repository's HEAD (its
# commits, not the working tree's changes), an empty cache of its own (SPILLWAY_CACHE, and Go's
# build and module caches, so nothing built before is reused), then `make test` once and
# `make demo` DEMO_RUNS times (3 by default), each demo followed by `make demo-down`. Prints each
# build step's time, each command's time, pytest's last line, each demo's headline numbers, and
# the runs side by side (demo-runs.md, by demo/spread.py from each run's logs).
#   make fresh-check                      (or: bash tests/cluster/fresh-check.sh)
#   FRESH_DIR=/var/tmp/f DEMO_RUNS=1 SKIP_TEST=1 make fresh-check
#   KEEP_CACHE=1 SKIP_TEST=1 make fresh-check   (the demos from a clean clone, builds from the usual
#                                                caches: what the runs show does not depend on them)
# Debian's packages are installed system-wide and stay installed: the check cannot take them away,
# so their install is cold only on a machine that never had them. Nothing else may hold the real
# node meanwhile (one per machine: stop `make demo` or `make cluster-up` first). The work
# directory is kept for reading (its clone, caches and logs); remove it when done.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${FRESH_DIR:-$(mktemp -d /var/tmp/spillway-fresh.XXXXXX)}
DEMO_RUNS=${DEMO_RUNS:-3}
DURATION=${DURATION:-}
mkdir -p "$DIR"
[ ! -e "$DIR/repo" ] || { echo "fresh-check: $DIR/repo exists; give an empty FRESH_DIR" >&2; exit 2; }
git clone -q "$ROOT" "$DIR/repo"
if [ -z "${KEEP_CACHE:-}" ]; then
  export SPILLWAY_CACHE=$DIR/cache GOCACHE=$DIR/go-build GOMODCACHE=$DIR/go-mod PIP_NO_CACHE_DIR=1
fi
cd "$DIR/repo"
echo "fresh-check in $DIR (commit $(git rev-parse --short HEAD)$([ -n "${KEEP_CACHE:-}" ] && echo ', the usual caches kept'))"

timed() {  # LOG COMMAND...: runs it, prints its time and whether it passed
  local log=$1 begun=$SECONDS rc=0
  shift
  "$@" >"$log" 2>&1 || rc=$?
  echo "$* : exit $rc after $((SECONDS - begun)) s (log $log)"
  grep -h '^deps: ' "$log" | sed 's/^/  /' || true
  return $rc
}

failed=0
if [ -z "${SKIP_TEST:-}" ]; then
  timed "$DIR/test.log" make test || failed=1
  tail -n 1 "$DIR/test.log" | sed 's/^/  pytest: /'
fi
for run in $(seq 1 "$DEMO_RUNS"); do
  timed "$DIR/demo-$run.log" make demo ${DURATION:+DURATION=$DURATION} || failed=1
  report=demo-out/demo-report.md
  if [ -f "$report" ]; then
    rm -rf "$DIR/demo-$run" && cp -r demo-out "$DIR/demo-$run"
    grep -E '^\| (errors|surge start|p95 in surge|logged-out)' "$report" | sed "s/^/  demo $run: /"
    grep -E '^[0-9]+ replicas? started' "$report" | sed "s/^/  demo $run: /" || true
  fi
  make demo-down >>"$DIR/demo-$run.log" 2>&1 || failed=1
done
runs=("$DIR"/demo-[0-9]*/)
if [ -d "${runs[0]}" ]; then
  .venv/bin/python -m demo.spread "$DIR/demo-runs.md" "${runs[@]}" ${DURATION:+--duration $DURATION} \
    --title "make demo, $DEMO_RUNS runs from a clean clone (commit $(git rev-parse --short HEAD))"
  tail -n 1 "$DIR/demo-runs.md" | sed 's/^/  /'
  echo "  the runs side by side: $DIR/demo-runs.md"
fi
exit $failed
