"""`python -m tests.cluster up|down|status`: the local cluster for people (make cluster-up): the
control plane, kwok's fake nodes and the real node. `down` also cleans up after an interrupted
run, from the state files."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from tests.cluster.localcluster import CACHE, NODE_STATE, Component, LocalCluster, clean_stale_node

STATE_DIR = CACHE / "cluster"
STATE = STATE_DIR / "state.json"


def up() -> int:
    if STATE.exists():
        existing = LocalCluster.from_state(json.loads(STATE.read_text()))
        if all(c.alive() for c in existing.components):
            print(f"already running\nexport KUBECONFIG={existing.kubeconfig}")
            return 0
        existing.stop()
        shutil.rmtree(STATE_DIR, ignore_errors=True)
    cluster = LocalCluster(workdir=STATE_DIR)
    cluster.start()
    STATE.write_text(json.dumps(cluster.state(), indent=2))
    node = f" (the real node {getattr(cluster, 'node_startup_seconds', 0):.1f}s of it)" if cluster.node else ""
    print(f"local cluster up in {cluster.startup_seconds:.1f}s{node}; logs in {STATE_DIR / 'logs'}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def down() -> int:
    stopped = False
    if STATE.exists():
        LocalCluster.from_state(json.loads(STATE.read_text())).stop()
        stopped = True
    if NODE_STATE.exists():  # a real node whose cluster never wrote its state (killed while starting)
        try:
            clean_stale_node()
            stopped = True
        except RuntimeError as err:  # alive, and another run's (a test session's)
            print(err, file=sys.stderr)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    print("local cluster stopped" if stopped else "not running")
    return 0


def status() -> int:
    if not STATE.exists():
        print("not running")
        return 1
    cluster = LocalCluster.from_state(json.loads(STATE.read_text()))
    processes = list(cluster.components)
    if NODE_STATE.exists():
        node_state = json.loads(NODE_STATE.read_text())
        if node_state.get("workdir") == str(STATE_DIR):
            processes += [Component(p["name"], [p["binary"]], Path("/dev/null"), p["pid"])
                          for p in node_state.get("processes", [])]
    for c in processes:
        print(f"{c.name:26} pid {c.pid:<8} {'running' if c.alive() else 'STOPPED'}")
    return 0 if all(c.alive() for c in processes) else 1


if __name__ == "__main__":
    commands = {"up": up, "down": down, "status": status}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print("usage: python -m tests.cluster up|down|status", file=sys.stderr)
        sys.exit(2)
    sys.exit(commands[sys.argv[1]]())
