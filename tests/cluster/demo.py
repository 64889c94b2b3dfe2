"""`make demo`: the local control plane, the CRD, the operator and a sample ScalableService.

`python -m tests.cluster.demo up` starts it all (building what is missing), waits until the
sample is Ready and prints what Spillway made; `down` stops everything by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cluster import __main__ as cluster_cli
from tests.cluster.localcluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
DEMO_STATE = cluster_cli.STATE_DIR / "demo.json"
SAMPLE = ROOT / "manifests" / "examples" / "demo.yaml"


def _cluster() -> LocalCluster:
    state = json.loads(cluster_cli.STATE.read_text())
    cluster = LocalCluster.from_state(state)
    cluster.bins = {"k8s": Path(state["components"][1]["binary"]).parent}
    return cluster


def up() -> int:
    cluster_cli.up()
    cluster = _cluster()
    kubectl = [str(cluster.kubectl_path), f"--kubeconfig={cluster.kubeconfig}"]
    subprocess.run([*kubectl, "apply", "--server-side", "-f", str(ROOT / "crds")], check=True)
    subprocess.run([*kubectl, "wait", "--for=condition=Established", "crd/scalableservices.spillway.io",
                    "--timeout=60s"], check=True)
    if not DEMO_STATE.exists():
        log = cluster_cli.STATE_DIR / "logs" / "spillway.log"
        with log.open("ab") as handle:
            operator = subprocess.Popen(
                [str(Path(sys.executable).parent / "spillway"), "run", "--kubeconfig", str(cluster.kubeconfig),
                 "--liveness", "http://127.0.0.1:18081/healthz", "--metrics-address", "127.0.0.1",
                 "--metrics-port", "18080"],
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        DEMO_STATE.write_text(json.dumps({"operator_pid": operator.pid, "log": str(log)}))
        print(f"operator running (pid {operator.pid}); log: {log}; metrics: http://127.0.0.1:18080/metrics")
    subprocess.run([*kubectl, "apply", "-f", str(SAMPLE)], check=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = subprocess.run([*kubectl, "get", "ssvc", "demo", "-o",
                              "jsonpath={.status.conditions[?(@.type=='Ready')].status}"],
                             capture_output=True, text=True)
        if got.stdout == "True":
            break
        time.sleep(1)
    else:
        print("the sample did not become Ready within 120s; see the operator log", file=sys.stderr)
        return 1
    print()
    subprocess.run([*kubectl, "get", "ssvc,deploy,pods,svc,pdb", "-o", "wide"], check=True)
    print(f"\nexport KUBECONFIG={cluster.kubeconfig}\n"
          "try: kubectl scale ssvc demo --replicas=4; kubectl describe ssvc demo\nstop: make demo-down")
    return 0


def down() -> int:
    if DEMO_STATE.exists():
        pid = json.loads(DEMO_STATE.read_text())["operator_pid"]
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"spillway" in cmdline.read_bytes():
            os.killpg(pid, signal.SIGTERM)
        DEMO_STATE.unlink()
    return cluster_cli.down()


if __name__ == "__main__":
    commands = {"up": up, "down": down}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print("usage: python -m tests.cluster.demo up|down", file=sys.stderr)
        sys.exit(2)
    sys.exit(commands[sys.argv[1]]())
