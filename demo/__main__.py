"""`python -m demo up|down` (`make demo`, `make demo-down`): the whole product live on this machine.

`up` starts the local cluster with its real node (building what is missing, cached in
~/.cache/spillway), a Prometheus that finds the cluster's pods by Kubernetes discovery and
listens on the node's address (the operator in its pod reads it there), installs the chart so
that the operator runs in the cluster, then runs the scenario (`demo.scenario`): the session app
behind HAProxy with a Redis Sentinel session store, a surge of logged-in users, an app pod and
the Redis primary deleted midway. It prints a status line every few seconds and writes
`demo-out/demo-report.md` and `demo-out/demo.png`; it exits 1 if a user was logged out or
Spillway did not scale out and back in. Everything stays up to look at until `down`, which
stops every process the demo and the cluster started, by the PIDs they recorded.

DURATION (seconds, default 300; at least 60) sets the run's length: `make demo DURATION=120`
takes about two minutes of load.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from demo.scenario import ROOT, Bed, install_operator, plan, run
from tests.cluster import __main__ as cluster_cli
from tests.cluster import node as real_node
from tests.cluster.localcluster import build

STATE = cluster_cli.STATE_DIR / "demo.json"
OUT = ROOT / "demo-out"
NAMESPACE = "demo"


def up(duration: float) -> int:
    the_plan = plan(duration)  # a bad DURATION fails before anything starts
    if cluster_cli.up() != 0:
        return 1
    state = json.loads(cluster_cli.STATE.read_text())
    bins = build()
    bed = Bed(kubeconfig=state["kubeconfig"], kubectl=str(Path(state["k8s_bin"]) / "kubectl"),
              helm=str(bins["helm"] / "helm"), images=dict(real_node.IMAGES), placement=real_node.node_placement())
    prometheus_url = _prometheus(state["kubeconfig"], bins)
    print(f"prometheus {prometheus_url} (pod discovery; the operator's pod reads it on the node's address)")
    install_operator(bed)
    print("operator installed by its chart in spillway-system, running on the real node")
    if bed.json("get", "namespace", NAMESPACE) is not None:  # a previous run's sample: start clean
        bed.run("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=180s", timeout=200)
    result = run(bed, the_plan, prometheus_url, OUT, NAMESPACE)
    summary = result.summary
    print(f"\nreport: {result.report} (and {OUT / 'demo.png'})")
    print(f"peak {summary.peak_replicas} replicas; users logged out: {summary.logged_out}; "
          f"requests {summary.sent}, errors {summary.errors}")
    print(f"\nexport KUBECONFIG={bed.kubeconfig}\n"
          f"look:  kubectl get ssvc,pods -n {NAMESPACE}    why: kubectl describe ssvc shop -n {NAMESPACE}\n"
          "stop:  make demo-down")
    if summary.logged_out:
        print(f"{summary.logged_out} users were logged out", file=sys.stderr)
        return 1
    if summary.peak_replicas is None or summary.min_replicas is None or summary.peak_replicas <= summary.min_replicas \
            or not summary.scaled_in:
        print("Spillway did not scale out and back in; see `kubectl logs -n spillway-system deploy/spillway`",
              file=sys.stderr)
        return 1
    return 0


def _prometheus(kubeconfig: str, bins: dict[str, Path]) -> str:
    """The demo's Prometheus, started once (its PID recorded in the demo's state file)."""
    from tests.integration.components import Prometheus

    if STATE.exists():
        known = json.loads(STATE.read_text())
        if _ours(known["prometheus_pid"], "prometheus"):
            return str(known["prometheus_url"])
    workdir = cluster_cli.STATE_DIR / "prometheus"
    workdir.mkdir(parents=True, exist_ok=True)
    prometheus = Prometheus([], {}, workdir, kubeconfig=kubeconfig, binary=str(bins["prometheus"] / "prometheus"),
                            host=real_node.NODE_IP)
    prometheus.start()
    assert prometheus.process.proc is not None
    STATE.write_text(json.dumps({"prometheus_pid": prometheus.process.proc.pid, "prometheus_url": prometheus.url}))
    return prometheus.url


def _ours(pid: int, name: str) -> bool:
    """Whether `pid` is still the process the demo started (a PID reused since is left alone)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    return cmdline.exists() and name.encode() in cmdline.read_bytes()


def down() -> int:
    if STATE.exists():
        pid = json.loads(STATE.read_text())["prometheus_pid"]
        if _ours(pid, "prometheus"):
            os.kill(pid, signal.SIGTERM)
        STATE.unlink()
    return cluster_cli.down()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--duration", type=float, default=float(os.environ.get("DURATION") or 300),
                        help="seconds of load (default 300, or $DURATION)")
    args = parser.parse_args()
    if args.command == "down":
        return down()
    try:
        return up(args.duration)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
