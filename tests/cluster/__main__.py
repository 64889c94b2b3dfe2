"""`python -m tests.cluster up|down|status`: the local control plane for people (make cluster-up)."""

from __future__ import annotations

import json
import shutil
import sys

from tests.cluster.localcluster import CACHE, LocalCluster

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
    print(f"local control plane up in {cluster.startup_seconds:.1f}s; logs in {STATE_DIR / 'logs'}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def down() -> int:
    if not STATE.exists():
        print("not running")
        return 0
    LocalCluster.from_state(json.loads(STATE.read_text())).stop()
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    print("local control plane stopped")
    return 0


def status() -> int:
    if not STATE.exists():
        print("not running")
        return 1
    cluster = LocalCluster.from_state(json.loads(STATE.read_text()))
    for c in cluster.components:
        print(f"{c.name:26} pid {c.pid:<8} {'running' if c.alive() else 'STOPPED'}")
    return 0 if all(c.alive() for c in cluster.components) else 1


if __name__ == "__main__":
    commands = {"up": up, "down": down, "status": status}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print("usage: python -m tests.cluster up|down|status", file=sys.stderr)
        sys.exit(2)
    sys.exit(commands[sys.argv[1]]())
